//! Webhook intake (`POST /webhooks/calendly`) and the meetings REST routes.

use super::domain::{MeetingFilter, MeetingView};
use super::service::{self, Intake};
use crate::accounts::Caller;
use crate::error::{AppResult, ErrorEnvelope};
use crate::platform::http::{ApiQuery, ClientAddr};
use crate::platform::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Serialize, ToSchema)]
pub struct IntakeAnswer {
    /// `accepted`, `duplicate` or `spooled` (database down: kept in the object store
    /// and replayed when it is back).
    status: &'static str,
    id: Option<i64>,
}

/// Receive a Calendly webhook v2 delivery (`invitee.created`, `invitee.canceled`,
/// `invitee_no_show.*`; other events are stored raw). Signed with
/// `Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`.
#[utoipa::path(post, path = "/webhooks/calendly", tag = "meetings", request_body(content = String, content_type = "application/json"),
    params(("Calendly-Webhook-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex>")),
    responses(
        (status = 202, description = "stored (or spooled)", body = IntakeAnswer),
        (status = 200, description = "a duplicate of an earlier delivery", body = IntakeAnswer),
        (status = 400, description = "malformed body or a required field missing", body = ErrorEnvelope),
        (status = 401, description = "missing, invalid or stale signature", body = ErrorEnvelope),
        (status = 413, description = "larger than SB_MAX_BODY_KB", body = ErrorEnvelope),
        (status = 429, description = "too many deliveries from this address (SB_WEBHOOK_RATE_PER_MIN)", body = ErrorEnvelope),
        (status = 503, description = "cannot store it right now; retry", body = ErrorEnvelope)))]
async fn calendly_webhook(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, Json<IntakeAnswer>)> {
    let signature = headers.get(super::calendly::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let answer = match service::intake(&state, service::Sender::Address(client), signature, body).await? {
        Intake::Accepted(id) => (StatusCode::ACCEPTED, IntakeAnswer { status: "accepted", id: Some(id) }),
        Intake::Duplicate => (StatusCode::OK, IntakeAnswer { status: "duplicate", id: None }),
        Intake::Spooled => (StatusCode::ACCEPTED, IntakeAnswer { status: "spooled", id: None }),
    };
    Ok((answer.0, Json(answer.1)))
}

/// Meetings by start time, filtered.
#[utoipa::path(get, path = "/meetings", tag = "meetings", security(("bearer" = [])), params(MeetingFilter),
    responses((status = 200, body = Vec<MeetingView>), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)))]
async fn list_meetings(State(state): State<AppState>, caller: Caller, ApiQuery(filter): ApiQuery<MeetingFilter>) -> AppResult<Json<Vec<MeetingView>>> {
    Ok(Json(service::list(&state.db, &caller, &filter).await?))
}

/// Changes to meetings (Server-Sent Events; resumable with Last-Event-ID).
#[utoipa::path(get, path = "/meetings/events", tag = "meetings", security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of meeting changes", content_type = "text/event-stream", body = crate::platform::changes::ChangeEvent),
        (status = 401, body = ErrorEnvelope)))]
async fn meeting_events(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> impl IntoResponse {
    let last = crate::platform::changes::last_event_id(&headers);
    crate::platform::changes::sse(state.db.clone(), state.changes.clone(), service::events_channel(&caller), last)
}

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_meetings)).routes(routes!(meeting_events))
}

/// Mounted at the root: the address booking sites are configured with.
pub fn webhook_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(calendly_webhook))
}
