//! The inbox pages' server functions. Each parses its input, calls one service function
//! and maps the result; the REST handlers in `http.rs` call the same services.

use super::*;

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the inbox page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboxState {
    pub me: String,
    /// Server time when this was read: the countdowns start from it.
    pub now: i64,
    pub waiting: Vec<Waiting>,
}

/// One read of the caller's inbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboxPage {
    pub messages: Vec<MessageView>,
    /// More messages are waiting: read again for the next page.
    pub has_more: bool,
}

#[server(prefix = "/_fn", endpoint = "chat_inbox")]
pub async fn load_inbox() -> Result<InboxState, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    Ok(InboxState {
        waiting: service::waiting(&state.db, &caller, caller.username()).await?,
        me: caller.username().to_owned(),
        now: crate::platform::time::now_ms(),
    })
}

#[server(prefix = "/_fn", endpoint = "chat_send")]
pub async fn send_message(to: String, text: String, timeout: Option<String>) -> Result<i64, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let timeout = match timeout.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| AppError::invalid("timeout", "timeout must be a whole number of seconds"))?),
    };
    service::post_message(&state, &caller, &to, &text, timeout).await.map_err(|e| match e.field.as_deref() {
        Some("username") => e.on_field("to"),
        _ => e,
    })
}

/// Reads (and so expires) what waits in the caller's inbox, a page at a time.
#[server(prefix = "/_fn", endpoint = "chat_read")]
pub async fn read_my_inbox() -> Result<InboxPage, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let read = service::read_inbox(&state, &caller, caller.username()).await?;
    // Read means expired now, still in the database until the archiver moves it.
    let now = crate::platform::time::now_ms();
    let messages = read.messages.iter().map(|m| service::message_view(m.into(), StoredIn::Hot, now)).collect();
    Ok(InboxPage { messages, has_more: read.has_more })
}

#[server(prefix = "/_fn", endpoint = "chat_open")]
pub async fn open_message(id: i64) -> Result<MessageView, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let (line, storage) = service::open_message(&state, &caller, id).await?;
    Ok(service::message_view(line, storage, crate::platform::time::now_ms()))
}
