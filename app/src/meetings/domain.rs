//! The meetings feed as pages and the REST API show it.

use serde::{Deserialize, Serialize};

/// One scheduled meeting with its latest state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MeetingView {
    pub id: i64,
    /// Calendly's scheduled event URI.
    pub event_uri: String,
    pub name: String,
    pub status: MeetingStatus,
    pub invitee_name: String,
    pub invitee_email: String,
    pub host_email: String,
    /// Milliseconds since the epoch (UTC).
    pub start_time: i64,
    pub end_time: i64,
    pub location: String,
    pub canceled_by: Option<String>,
    pub cancel_reason: Option<String>,
    pub no_show: bool,
    /// The meeting this one was rescheduled to / from, when known.
    pub rescheduled_to: Option<MeetingLink>,
    pub rescheduled_from: Option<MeetingLink>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MeetingLink {
    pub event_uri: String,
    /// Set once the linked meeting's own webhook has arrived.
    pub id: Option<i64>,
    pub start_time: Option<i64>,
}

/// The listing filters; the page's URL query mirrors them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct MeetingFilter {
    /// `scheduled`, `canceled` or `rescheduled`.
    pub status: Option<String>,
    /// The host's email.
    pub host: Option<String>,
    /// Meetings starting at or after this time (ISO-8601 or a date).
    pub from: Option<String>,
    /// Meetings starting before this time (ISO-8601 or a date).
    pub to: Option<String>,
    /// At most this many (default 200, max 1000).
    pub limit: Option<u64>,
}

crate::named_enum! {
    /// A meeting's current status, folded from every webhook about it.
    pub enum MeetingStatus {
        Scheduled = "scheduled",
        /// Canceled by either side: final.
        Canceled = "canceled",
        /// Canceled in favour of a new time (a new meeting carries it): final.
        Rescheduled = "rescheduled",
    }
}

impl MeetingStatus {
    /// A canceled or rescheduled meeting stays so, whatever arrives after.
    pub fn is_final(self) -> bool {
        !matches!(self, MeetingStatus::Scheduled)
    }
}
