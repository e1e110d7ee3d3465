//! Guards every request passes before a handler sees it: how big and how slow it may be,
//! and whether a browser sent it on behalf of another site. Each refusal is a 4xx/5xx in
//! the app's JSON error shape, so clients learn which limit they hit.

use crate::error::AppError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Routes that stream a large body to disk themselves: they get their own size limit
/// and as long as the upload takes.
const STREAMING_UPLOADS: &[&str] = &["/api/v1/wages/imports"];

#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    pub max_body_bytes: u64,
    pub max_upload_bytes: u64,
    pub timeout: Duration,
}

/// Refuses a body over the limit before reading it when its length is declared (413),
/// caps it while it streams when it is not (the extractor then answers 413), and answers
/// 503 `timeout` when the handler takes longer than the limit. Dropping a handler's
/// future rolls back its open transaction, so a timed-out request has written nothing.
pub async fn enforce_limits(State(limits): State<RequestLimits>, req: Request, next: Next) -> Response {
    let upload = req.method() == Method::POST && STREAMING_UPLOADS.contains(&req.uri().path());
    let max = if upload { limits.max_upload_bytes } else { limits.max_body_bytes };
    if declared_length(req.headers()).is_some_and(|len| len > max) {
        return too_large(max).into_response();
    }
    if upload {
        return next.run(req).await;
    }
    let req = req.map(|body| Body::new(http_body_util::Limited::new(body, max as usize)));
    match tokio::time::timeout(limits.timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(timeout_ms = limits.timeout.as_millis() as u64, "request timed out");
            AppError::new(503, "timeout", format!("the request took longer than {} s; retry", limits.timeout.as_secs_f64()))
                .into_response()
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

pub fn too_large(max: u64) -> AppError {
    let limit = if max >= 1 << 20 { format!("{} MiB", max >> 20) } else { format!("{} KiB", (max >> 10).max(1)) };
    AppError::new(413, "payload_too_large", format!("request bodies are limited to {limit}")).on_field("body")
}

/// Where the REST API lives (the chat contract also at the root).
const API_PREFIXES: &[&str] = &["/api/", "/chat/", "/chats/"];

fn is_api(path: &str) -> bool {
    path == "/chat" || API_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Cross-site request forgery protection for cookie-authenticated requests: a browser
/// says where a request comes from (`Sec-Fetch-Site`, or else `Origin`), and from another
/// site the session cookie alone is not consent — a state change is refused with 403, and
/// so is any REST call that carries cookies (`GET /chats/{me}` reads, and so expires, the
/// inbox: a link on another site must not do that). Pages stay reachable from links
/// anywhere. Requests with their own bearer credentials and requests no browser sent (no
/// such headers: webhooks, scripts) pass; they carry no ambient authority. (Any other
/// `Authorization`, such as a proxy's Basic credentials, does not exempt a request.)
pub async fn reject_cross_site(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let ambient = req.headers().contains_key(header::COOKIE) && is_api(req.uri().path());
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
    if (safe && !ambient) || bearer || !is_cross_site(req.headers()) {
        return next.run(req).await;
    }
    tracing::warn!(method = %req.method(), path = req.uri().path(), "cross-site state change refused");
    AppError::new(403, "cross_site_request", "state changes from another site are refused; use this site's pages or a bearer token")
        .into_response()
}

/// Whether the browser marked the request as coming from another origin.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST)) else {
        return false;
    };
    let authority = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest);
    authority != host.to_str().ok()
}

/// What a per-address limit counts against: the IPv4 address, or the /64 an IPv6 address
/// is in (one subscriber gets a whole /64, so counting single addresses would give an
/// attacker 2^64 buckets).
pub fn address_key(client: Option<IpAddr>) -> String {
    match client.map(canonical_ip) {
        Some(IpAddr::V6(v6)) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
        Some(v4) => v4.to_string(),
        None => "unknown".into(),
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a dual-stack socket sees IPv4
/// clients) as the IPv4 address it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The address a rate limit should count against: the peer, or behind a trusted proxy
/// the last hop it appended to `X-Forwarded-For` (earlier hops are the client's to forge).
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).last();
        if let Some(ip) = forwarded.and_then(|v| v.rsplit(',').next()).and_then(|ip| ip.trim().parse().ok()) {
            return Some(ip);
        }
    }
    peer.map(|p| p.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use axum::Router;
    use tower::ServiceExt;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn a_request_is_cross_site_when_the_browser_says_so() {
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site"), ("host", "a.test")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "same-origin"), ("origin", "https://evil.test")])));
        assert!(is_cross_site(&headers(&[("origin", "https://evil.test"), ("host", "a.test")])));
        assert!(is_cross_site(&headers(&[("origin", "null"), ("host", "a.test")])));
        assert!(!is_cross_site(&headers(&[("origin", "http://a.test:3000"), ("host", "a.test:3000")])));
        assert!(!is_cross_site(&headers(&[("host", "a.test")])), "no browser headers: not a browser");
    }

    #[test]
    fn rest_paths_are_told_from_pages() {
        for api in ["/api/v1/me", "/chat", "/chat/7", "/chats/ada"] {
            assert!(is_api(api), "{api}");
        }
        for page in ["/", "/inbox", "/chatter", "/calendar", "/ical/x.ics"] {
            assert!(!is_api(page), "{page}");
        }
    }

    #[test]
    fn the_client_address_is_the_peer_unless_a_proxy_is_trusted() {
        let peer: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]);
        assert_eq!(client_ip(&h, Some(peer), false), Some(peer.ip()), "forgeable header ignored");
        assert_eq!(client_ip(&h, Some(peer), true), "203.0.113.7".parse().ok(), "the proxy's own hop");
        assert_eq!(client_ip(&HeaderMap::new(), Some(peer), true), Some(peer.ip()));
    }

    #[test]
    fn addresses_are_counted_per_ipv4_address_and_per_ipv6_64() {
        let key = |ip: &str| address_key(Some(ip.parse().unwrap()));
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7", "a mapped IPv4 client is that client");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"), "one /64, one bucket");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(address_key(None), "unknown");
    }

    fn limited(timeout: Duration) -> Router {
        let limits = RequestLimits { max_body_bytes: 16, max_upload_bytes: 1 << 20, timeout };
        Router::new()
            .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await; "late" }))
            .route("/echo", post(|body: axum::body::Bytes| async move { body }))
            .layer(axum::middleware::from_fn_with_state(limits, enforce_limits))
    }

    async fn error_code(res: Response) -> (u16, String) {
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn a_slow_handler_is_cut_off_with_a_timeout_error() {
        let res = limited(Duration::from_millis(50)).oneshot(Request::get("/slow").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(error_code(res).await, (503, "timeout".into()));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_declared_or_streamed() {
        let app = limited(Duration::from_secs(5));
        let small = app.clone().oneshot(Request::post("/echo").body(Body::from("0123456789")).unwrap()).await.unwrap();
        assert_eq!(small.status(), 200);
        let declared = app.clone().oneshot(Request::post("/echo").header("content-length", "17").body(Body::from("x".repeat(17))).unwrap()).await.unwrap();
        assert_eq!(error_code(declared).await, (413, "payload_too_large".into()));
        // No Content-Length: the cap applies while the body streams.
        let chunks = futures::stream::iter(["0123456789", "0123456789"].map(|c| Ok::<_, std::io::Error>(c)));
        let streamed = app.oneshot(Request::post("/echo").body(Body::from_stream(chunks)).unwrap()).await.unwrap();
        assert_eq!(streamed.status(), 413);
    }
}
