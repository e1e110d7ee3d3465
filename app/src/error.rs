//! The one error shape of Switchboard, shared by the browser and the server.
//!
//! Services return `AppError`; REST handlers render it as
//! `{"error": {"code", "message", "field"?}}` with its HTTP status, and server functions
//! carry it to the browser unchanged so forms can show the message beside the field.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppError {
    pub status: u16,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What went wrong underneath (a database error, an I/O error), for the log and for
    /// `anyhow` chains in jobs. Never sent to a client: the browser gets code and message.
    #[serde(skip)]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An error's cause as an error of its own (so `anyhow` can chain it).
#[cfg(feature = "ssr")]
#[derive(Debug)]
struct Cause(Arc<dyn std::error::Error + Send + Sync>);

#[cfg(feature = "ssr")]
impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "ssr")]
impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Two errors are the same answer when the client would see the same thing; the cause
/// behind a 500 is not part of the answer.
impl PartialEq for AppError {
    fn eq(&self, other: &Self) -> bool {
        (self.status, &self.code, &self.message, &self.field) == (other.status, &other.code, &other.message, &other.field)
    }
}

impl Eq for AppError {}

pub type AppResult<T> = Result<T, AppError>;

/// The code of a transient database conflict (deadlock, lock timeout): retry the request.
pub const DB_CONFLICT: &str = "db_conflict";

impl AppError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), field: None, source: None }
    }

    /// Keeps `cause` as this error's source (logged, never shown to the client).
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(cause));
        self
    }

    #[cfg(feature = "ssr")]
    /// The error as a job or start-up failure: message, status and code, with the cause
    /// (when there is one) chained below.
    pub fn into_failure(self) -> anyhow::Error {
        let summary = format!("{} ({} {})", self.message, self.status, self.code);
        match self.source {
            Some(cause) => anyhow::Error::new(Cause(cause)).context(summary),
            None => anyhow::anyhow!(summary),
        }
    }

    pub fn on_field(mut self, field: &str) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: a request field is missing or wrong; `field` names it.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_field", message).on_field(field)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} not found"))
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(429, "rate_limited", message)
    }

    /// 500 with a generic message: the cause goes to the log, never to the client.
    pub fn internal() -> Self {
        Self::new(500, "internal", "internal error; see the server log")
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable", message)
    }
}

/// Server functions carry `AppError` to the browser as JSON; transport failures become
/// an `AppError` too, so views handle one error type.
impl leptos::server_fn::error::FromServerFnError for AppError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr;
        match value {
            ServerFnErrorErr::Request(msg) => Self::new(503, "network", format!("could not reach the server: {msg}")),
            ServerFnErrorErr::Args(msg) | ServerFnErrorErr::MissingArg(msg) => Self::bad_request(msg),
            other => Self::new(500, "server_fn", other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use serde::Serialize;
    use utoipa::ToSchema;

    /// The JSON body of every REST error response.
    #[derive(Serialize, ToSchema)]
    pub struct ErrorEnvelope {
        pub error: ErrorDetail,
    }

    #[derive(Serialize, ToSchema)]
    pub struct ErrorDetail {
        /// Machine-readable code, e.g. `invalid_field`, `not_found`, `rate_limited`.
        pub code: String,
        pub message: String,
        /// The request field at fault, when there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub field: Option<String>,
    }

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = ErrorEnvelope {
                error: ErrorDetail { code: self.code, message: self.message, field: self.field },
            };
            (status, axum::Json(body)).into_response()
        }
    }

    impl AppError {
        /// 500 whose cause goes to the log (the client sees only the generic message).
        pub fn internal_because(cause: impl std::fmt::Display) -> Self {
            tracing::error!(%cause, "internal error");
            AppError::internal()
        }
    }
}

/// Turns any failure the client cannot act on into a logged 500 that keeps its cause:
/// `serde_json::to_vec(&x).or_internal("encoding the spooled webhook")?`. This replaces
/// `map_err(|_| AppError::internal())`, which answered 500 and left nothing in the log.
pub trait OrInternal<T> {
    fn or_internal(self, doing: &'static str) -> Result<T, AppError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> OrInternal<T> for Result<T, E> {
    fn or_internal(self, doing: &'static str) -> Result<T, AppError> {
        self.map_err(|cause| {
            #[cfg(feature = "ssr")]
            tracing::error!(error = %cause, doing, "internal error");
            #[cfg(not(feature = "ssr"))]
            let _ = doing;
            AppError::internal().caused_by(cause)
        })
    }
}

#[cfg(feature = "ssr")]
pub use ssr::{ErrorDetail, ErrorEnvelope};
