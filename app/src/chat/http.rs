//! The chat REST contract, served both at the root (`/chat`, `/chat/{id}`,
//! `/chats/{username}`: clients of the original exercise work unchanged) and under
//! `/api/v1`.

use super::service;
use crate::accounts::Caller;
use crate::error::{AppResult, ErrorEnvelope};
use crate::platform::http::ApiJson;
use crate::platform::state::AppState;
use crate::platform::time::to_rfc3339;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Deserialize, ToSchema)]
pub struct PostChat {
    /// The recipient (need not have an account; a member's inbox is their username).
    username: String,
    /// 1 to 4096 characters.
    text: String,
    /// Seconds until the message expires: 0 to 31536000, default 60.
    timeout: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Created {
    id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ChatMessage {
    username: String,
    text: String,
    /// ISO-8601 UTC, e.g. `2026-11-22T10:00:00.000Z`.
    expiration_date: String,
}

#[derive(Serialize, ToSchema)]
pub struct InboxItem {
    id: i64,
    text: String,
}

/// Leave a message for a user; it expires after `timeout` seconds.
#[utoipa::path(post, path = "/chat", tag = "chat", security(("bearer" = [])), request_body = PostChat,
    responses(
        (status = 201, description = "created", body = Created),
        (status = 400, description = "invalid field", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope)))]
async fn post_chat(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<PostChat>) -> AppResult<(StatusCode, Json<Created>)> {
    let id = service::post_message(&state, &caller, &req.username, &req.text, req.timeout).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// A message by id, expired or not (archived ones are read from cold storage).
#[utoipa::path(get, path = "/chat/{id}", tag = "chat", security(("bearer" = [])),
    params(("id" = i64, Path, description = "message id")),
    responses(
        (status = 200, body = ChatMessage),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "neither addressed to nor sent by the caller", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
async fn get_chat(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<ChatMessage>> {
    let (line, _) = service::open_message(&state, &caller, id).await?;
    Ok(Json(ChatMessage { username: line.username, text: line.text, expiration_date: to_rfc3339(line.expiration_date) }))
}

/// A user's unexpired messages, oldest first, at most 100 per call. Reading expires
/// them: a second call does not return them again, and concurrent calls never return the
/// same message twice. When more are waiting, the answer carries
/// `Link: </chats/{username}>; rel="next"`: call again for the next page.
#[utoipa::path(get, path = "/chats/{username}", tag = "chat", security(("bearer" = [])),
    params(("username" = String, Path, description = "the inbox owner")),
    responses(
        (status = 200, body = Vec<InboxItem>, headers(("Link" = String, description = "present when more messages are waiting"))),
        (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "another member's inbox", body = ErrorEnvelope)))]
async fn get_chats(State(state): State<AppState>, caller: Caller, uri: axum::http::Uri, Path(username): Path<String>) -> AppResult<impl IntoResponse> {
    let read = service::read_inbox(&state, &caller, &username).await?;
    let mut headers = axum::http::HeaderMap::new();
    if read.has_more {
        // The same address again: each read takes the next page.
        if let Ok(link) = format!("<{}>; rel=\"next\"", uri.path()).parse() {
            headers.insert(axum::http::header::LINK, link);
        }
    }
    let items: Vec<InboxItem> = read.messages.into_iter().map(|m| InboxItem { id: m.id, text: m.text }).collect();
    Ok((headers, Json(items)))
}

/// Mounted twice: at the root and under `/api/v1`.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_chat)).routes(routes!(get_chat)).routes(routes!(get_chats))
}

/// Changes to the caller's inbox (Server-Sent Events; resumable with Last-Event-ID):
/// a message arrived, or messages were read.
#[utoipa::path(get, path = "/me/chat/events", tag = "chat", security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of inbox changes", content_type = "text/event-stream", body = crate::platform::changes::ChangeEvent),
        (status = 401, body = ErrorEnvelope)))]
async fn inbox_events(State(state): State<AppState>, caller: Caller, headers: axum::http::HeaderMap) -> AppResult<impl IntoResponse> {
    let channel = service::inbox_channel(&caller, caller.username())?;
    Ok(crate::platform::changes::sse(state.db.clone(), state.changes.clone(), channel, crate::platform::changes::last_event_id(&headers)))
}

/// Routes only under `/api/v1`.
pub fn v1_only_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(inbox_events))
}
