//! HTTP plumbing shared by every capability's REST routes: a JSON body extractor whose
//! errors name the field at fault, query extraction with the same error shape, request
//! ids and request metrics.

use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;
use std::time::Instant;

/// Like `axum::Json`, but a bad body becomes a 400 in the app's error shape, with
/// `field` naming the offending member (`"body"` when the body is not JSON at all).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status().as_u16();
            if status == 413 {
                AppError::new(413, "payload_too_large", "request body is too large").on_field("body")
            } else {
                AppError::invalid("body", "request body could not be read")
            }
        })?;
        if !is_json {
            return Err(AppError::invalid("body", "expected a JSON body with Content-Type: application/json"));
        }
        // Every request body of this API is an object (serde would also fill a struct
        // from an array, and then blame an index instead of the body).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(AppError::invalid("body", "expected a JSON object"));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, mapping serde's error onto the request field it concerns.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return AppError::invalid("body", format!("request body is not valid JSON: {inner}"));
        }
        let message = strip_position(&inner.to_string());
        let field = if path == "." || path.is_empty() {
            missing_field(&message).unwrap_or("body").to_owned()
        } else {
            path
        };
        AppError::invalid(&field, format!("{field}: {message}"))
    })
}

/// serde reports a missing member at the parent's path; its name is in the message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query string extractor with the app's error shape.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Parses a URL query string; the error names the offending parameter. Pages that
/// mirror their filters in the URL hand their query to the server through this too.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, AppError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field = if path == "." { missing_field(&message).unwrap_or("query").to_owned() } else { path };
        AppError::invalid(&field, format!("{field}: {message}"))
    })
}

/// Server functions answer every error with 500. Ours carry an `AppError` whose status
/// says what really happened (401 wrong password, 400 bad field, …): put that status on
/// the response, so logs, metrics and the browser see a 4xx where the client was at
/// fault. The body is unchanged, and the client decodes any 4xx/5xx the same way.
pub async fn server_fn_error_status(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() != axum::http::StatusCode::INTERNAL_SERVER_ERROR || !res.headers().contains_key("serverfnerror") {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    if let Ok(err) = serde_json::from_slice::<AppError>(&bytes) {
        if let Ok(status) = axum::http::StatusCode::from_u16(err.status) {
            parts.status = status;
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

pub const REQUEST_ID: &str = "x-request-id";

/// Gives each request an id (keeping a sane one from a proxy), puts it in the tracing
/// span and echoes it in the response header.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    let value = HeaderValue::from_str(&id).expect("request ids are ASCII");
    req.headers_mut().insert(REQUEST_ID, value.clone());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %loggable_path(req.uri().path()));
    let mut res = tracing::Instrument::instrument(next.run(req), span).await;
    res.headers_mut().insert(REQUEST_ID, value);
    res
}

/// A request path as the logs may keep it: a segment that looks like a secret token (32
/// or more URL-safe base64 characters, as the capability URLs of feeds and booking
/// cancellations carry) is cut to its first four, so a log reader cannot replay it.
pub fn loggable_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let stem = segment.split('.').next().unwrap_or_default();
            let token = stem.len() >= 32 && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if token { format!("{}…", &stem[..4]) } else { segment.to_owned() }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The content security policy of every response. The WASM app needs
/// `'wasm-unsafe-eval'` to instantiate its module and `'unsafe-inline'` for the inline
/// hydration bootstrap and serialized resources Leptos writes into the page; everything
/// else comes from this origin only, and no other site may frame the app.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
    form-action 'self'; frame-ancestors 'none'";

/// HSTS for an app served over https: browsers then never try plain http again (for two
/// years), so a network attacker cannot strip TLS from a later visit.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains";

/// Which security headers every response gets.
#[derive(Clone, Copy, Debug)]
pub struct HeaderPolicy {
    /// Send `Strict-Transport-Security` (the public URL is https).
    pub hsts: bool,
}

/// Security headers on every response (a handler may set a stricter one of its own).
pub async fn security_headers(axum::extract::State(policy): axum::extract::State<HeaderPolicy>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ] {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if policy.hsts {
        headers.entry("strict-transport-security").or_insert(HeaderValue::from_static(STRICT_TRANSPORT_SECURITY));
    }
    res
}

/// Records `http_request_duration_seconds{method, route, status}`. The route is the
/// matched pattern (`/api/v1/users/{username}`), never the raw path, so label
/// cardinality stays bounded.
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route, "status" => status)
        .record(start.elapsed().as_secs_f64());
    res
}

/// The client's address, for rate limits: the peer, or the trusted proxy's hop.
pub fn client_addr(parts: &Parts, state: &super::state::AppState) -> Option<std::net::IpAddr> {
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    super::guards::client_ip(&parts.headers, peer, state.settings.http.trust_forwarded_for)
}

/// The client's address as an extractor (never rejects).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl FromRequestParts<super::state::AppState> for ClientAddr {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &super::state::AppState) -> Result<Self, AppError> {
        Ok(ClientAddr(client_addr(parts, state)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_tokens_in_paths_are_not_logged() {
        let token = "Ab3_-xYz0123456789abcdefghijklmnopq";
        assert_eq!(super::loggable_path(&format!("/ical/{token}.ics")), "/ical/Ab3_…");
        assert_eq!(super::loggable_path(&format!("/book/cancel/{token}")), "/book/cancel/Ab3_…");
        assert_eq!(super::loggable_path("/api/v1/users/ada/events"), "/api/v1/users/ada/events");
    }

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        username: String,
        timeout: Option<u32>,
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = parse_json::<Body>(br#"{"timeout": 5}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("username"));
        let err = parse_json::<Body>(br#"{"username": "a", "timeout": -1}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("timeout"));
        assert!(!err.message.contains("line"), "{}", err.message);
        let err = parse_json::<Body>(b"{not json").unwrap_err();
        assert_eq!((err.status, err.field.as_deref()), (400, Some("body")));
        assert!(parse_json::<Body>(br#"{"username": "a"}"#).is_ok());
    }
}
