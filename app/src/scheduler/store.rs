//! Scheduler tables (see migration `m20261126_000005_scheduler`).

pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub uid: String,
        pub owner_id: i64,
        pub title: String,
        pub description: String,
        pub location: String,
        pub start_at: i64,
        pub end_at: i64,
        pub all_day: bool,
        pub time_zone: String,
        pub version: i32,
        pub created_at: i64,
        pub updated_at: i64,
        /// A series (see migration `m20261206_000011_recurrence`): `rrule` is its rule.
        pub recurring: bool,
        pub rrule: Option<String>,
        /// Starts of the occurrences a series skips, comma-separated milliseconds.
        pub exceptions: Option<String>,
        /// Where the last occurrence ends (`end_at` for a single event).
        pub series_end: i64,
        /// An occurrence changed on its own: its series, and the start it replaces.
        pub series_id: Option<i64>,
        pub recurrence_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod feed {
    use sea_orm::entity::prelude::*;

    /// A user's secret iCalendar feed address (a capability URL, like Google's
    /// "secret address in iCal format"; rotating it revokes the old one). Looked up by
    /// the token's SHA-256; the token itself is kept only sealed, for its owner to see.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_feed_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        pub token_hash: String,
        pub token_sealed: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod legacy_feed {
    use sea_orm::entity::prelude::*;

    /// Feed tokens as versions before 2026-12 stored them, in clear; emptied into
    /// [`super::feed`] at start-up.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_feeds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        pub token: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod span {
    use sea_orm::entity::prelude::*;

    /// The longest event a calendar has had (see migration
    /// `m20261204_000010_calendar_spans`): how far before a range its overlapping events
    /// can start. Only ever raised.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_spans")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub owner_id: i64,
        pub longest_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod booking_page {
    use sea_orm::entity::prelude::*;

    /// A user's booking page (see migration `m20261206_000012_booking_pages`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "booking_pages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub owner_id: i64,
        pub enabled: bool,
        pub title: String,
        pub weekly_hours: String,
        pub time_zone: String,
        pub slot_minutes: i32,
        pub buffer_before_minutes: i32,
        pub buffer_after_minutes: i32,
        pub min_notice_minutes: i32,
        pub horizon_days: i32,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod booking {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bookings")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub owner_id: i64,
        /// The event on the owner's calendar (none once canceled).
        pub event_id: Option<i64>,
        pub start_at: i64,
        pub end_at: i64,
        pub invitee_name: String,
        pub invitee_email: String,
        pub invitee_zone: String,
        pub cancel_hash: String,
        pub status: crate::scheduler::domain::BookingStatus,
        pub created_at: i64,
        pub canceled_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod subscription {
    use sea_orm::entity::prelude::*;

    /// A calendar shown read-only beside a user's own (see migration
    /// `m20261207_000013_calendar_subscriptions`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_subscriptions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub owner_id: i64,
        pub name: String,
        pub kind: crate::scheduler::domain::SubscriptionKind,
        /// The feed's address, sealed (it is often a credential); none for an upload.
        pub url_sealed: Option<String>,
        /// What the owner is shown of the address.
        pub url_host: String,
        pub etag: Option<String>,
        pub last_modified: Option<String>,
        /// When the refresh job takes it next; none for an upload.
        pub refresh_at: Option<i64>,
        /// Held by a refresh under way until then.
        pub claimed_until: Option<i64>,
        /// When it was last fetched (successfully or not).
        pub fetched_at: Option<i64>,
        /// When its occurrences were last computed, and their digest.
        pub expanded_at: Option<i64>,
        pub digest: Option<String>,
        pub last_error: Option<String>,
        pub warnings: Option<String>,
        pub event_count: i32,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod subscribed_event {
    use sea_orm::entity::prelude::*;

    /// One occurrence of a subscribed calendar's event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_subscription_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub subscription_id: i64,
        pub owner_id: i64,
        pub title: String,
        pub location: String,
        pub start_at: i64,
        pub end_at: i64,
        pub all_day: bool,
        pub busy: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement};

/// The earliest start an event of `owner_id` overlapping a range from `from` can have:
/// `from` less the calendar's longest event, read in the same statement as the events —
/// so an event that statement sees is never longer than the bound it used (the two are
/// written in one transaction). A calendar without a row (none of its events was written
/// by this version yet) gets the longest any event may last.
pub fn earliest_overlapping_start(owner_id: i64, from: i64) -> SimpleExpr {
    let longest_allowed = super::domain::MAX_EVENT_DAYS * 86_400_000;
    Expr::cust_with_values("? - COALESCE((SELECT longest_ms FROM calendar_spans WHERE owner_id = ?), ?)", [from, owner_id, longest_allowed])
}

/// Raises the calendar's longest event to `span_ms` if it is longer, in the transaction
/// that writes the event. Reads first: the row is written (and locked) only by the rare
/// event longer than any before it, so events added to one calendar at once do not queue
/// on it.
pub async fn raise_longest(conn: &impl ConnectionTrait, owner_id: i64, span_ms: i64) -> Result<(), DbErr> {
    let longest = span::Entity::find_by_id(owner_id).one(conn).await?.map(|s| s.longest_ms);
    if longest.is_some_and(|l| l >= span_ms) {
        return Ok(());
    }
    let sql = match conn.get_database_backend() {
        DbBackend::MySql => {
            "INSERT INTO calendar_spans (owner_id, longest_ms) VALUES (?, ?) \
             ON DUPLICATE KEY UPDATE longest_ms = GREATEST(longest_ms, VALUES(longest_ms))"
        }
        _ => {
            "INSERT INTO calendar_spans (owner_id, longest_ms) VALUES (?, ?) \
             ON CONFLICT (owner_id) DO UPDATE SET longest_ms = MAX(longest_ms, excluded.longest_ms)"
        }
    };
    let backend = conn.get_database_backend();
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, [owner_id.into(), span_ms.into()])).await?;
    Ok(())
}
