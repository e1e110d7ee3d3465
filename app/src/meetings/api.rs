//! The meetings page's server functions. Each parses its input, calls one service function
//! and maps the result; the REST handlers in `http.rs` call the same services.

use super::*;

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The meetings page's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeetingsData {
    pub now: i64,
    pub meetings: Vec<MeetingView>,
    /// Whether the page offers "Send a test booking" (the embedded run).
    pub test_bookings: bool,
}

/// (The filter travels as separate fields: an all-empty nested struct would vanish from
/// the URL-encoded arguments.)
#[server(prefix = "/_fn", endpoint = "meetings_list")]
pub async fn load_meetings(
    status: Option<String>,
    host: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<MeetingsData, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let filter = MeetingFilter { status, host, from, to, limit: None };
    let state = crate::platform::state::AppState::from_context()?;
    let test_bookings = state.settings.part::<settings::MeetingsSettings>().test_bookings;
    Ok(MeetingsData { now: crate::platform::time::now_ms(), meetings: service::list(&state.db, &caller, &filter).await?, test_bookings })
}

/// "Send a test booking": a sample Calendly delivery through the real intake (embedded
/// run only).
#[server(prefix = "/_fn", endpoint = "meetings_test_booking")]
pub async fn send_test_booking() -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    demo::send_test_booking(&state, &caller).await
}
