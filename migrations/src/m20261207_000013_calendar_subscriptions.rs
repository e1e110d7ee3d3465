//! Subscribed calendars: another calendar's iCalendar address (or an uploaded `.ics`
//! file) shown read-only beside a user's own events. A subscription keeps what the last
//! fetch was told (`ETag`, `Last-Modified`) to ask only for a changed feed next time,
//! and when it is due again; its events are the feed's occurrences within the window
//! shown (a repeating event is stored once per occurrence), replaced as a whole by each
//! refresh.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CalendarSubscriptions {
    Table,
    Id,
    OwnerId,
    Name,
    Kind,
    UrlSealed,
    UrlHost,
    Etag,
    LastModified,
    RefreshAt,
    ClaimedUntil,
    FetchedAt,
    ExpandedAt,
    Digest,
    LastError,
    Warnings,
    EventCount,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CalendarSubscriptionEvents {
    Table,
    Id,
    SubscriptionId,
    OwnerId,
    Title,
    Location,
    StartAt,
    EndAt,
    AllDay,
    Busy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CalendarSubscriptions::Table)
                .col(id(CalendarSubscriptions::Id))
                .col(big(CalendarSubscriptions::OwnerId))
                .col(varchar(CalendarSubscriptions::Name, 100))
                // `url` or `upload`.
                .col(varchar(CalendarSubscriptions::Kind, 16))
                // The address is often a credential (a "secret address"): kept sealed.
                .col(long_text_null(CalendarSubscriptions::UrlSealed))
                .col(varchar(CalendarSubscriptions::UrlHost, 255))
                .col(varchar_null(CalendarSubscriptions::Etag, 255))
                .col(varchar_null(CalendarSubscriptions::LastModified, 64))
                // When the refresh job takes it next (none for an upload).
                .col(millis_null(CalendarSubscriptions::RefreshAt))
                // Held by a refresh under way until then (a process that died lets go).
                .col(millis_null(CalendarSubscriptions::ClaimedUntil))
                .col(millis_null(CalendarSubscriptions::FetchedAt))
                // When its occurrences were last computed (the window moves with it), and
                // a digest of them (an unchanged feed rewrites nothing).
                .col(millis_null(CalendarSubscriptions::ExpandedAt))
                .col(varchar_null(CalendarSubscriptions::Digest, 64))
                .col(varchar_null(CalendarSubscriptions::LastError, 1000))
                .col(varchar_null(CalendarSubscriptions::Warnings, 1000))
                .col(int(CalendarSubscriptions::EventCount))
                .col(millis(CalendarSubscriptions::CreatedAt))
                .to_owned(),
        )
        .await?;
        // A user's subscriptions (settings page, and the count a new one is held to).
        m.create_index(index("ix_calendar_subscriptions_owner", CalendarSubscriptions::Table).col(CalendarSubscriptions::OwnerId).to_owned()).await?;
        // The refresh job's "which are due", oldest first.
        m.create_index(index("ix_calendar_subscriptions_refresh", CalendarSubscriptions::Table).col(CalendarSubscriptions::RefreshAt).to_owned()).await?;
        m.create_table(
            Table::create()
                .table(CalendarSubscriptionEvents::Table)
                .col(id(CalendarSubscriptionEvents::Id))
                .col(big(CalendarSubscriptionEvents::SubscriptionId))
                .col(big(CalendarSubscriptionEvents::OwnerId))
                .col(varchar(CalendarSubscriptionEvents::Title, 200))
                .col(varchar(CalendarSubscriptionEvents::Location, 500))
                .col(millis(CalendarSubscriptionEvents::StartAt))
                .col(millis(CalendarSubscriptionEvents::EndAt))
                .col(boolean(CalendarSubscriptionEvents::AllDay))
                // `TRANSP:TRANSPARENT` events show but do not make the owner busy.
                .col(boolean(CalendarSubscriptionEvents::Busy))
                .to_owned(),
        )
        .await?;
        // A calendar page's and a booking page's range: owner, then start (an event is at
        // most the scheduler's longest event long, so a range is one index range).
        m.create_index(
            index("ix_calendar_subscription_events_owner_start", CalendarSubscriptionEvents::Table)
                .col(CalendarSubscriptionEvents::OwnerId)
                .col(CalendarSubscriptionEvents::StartAt)
                .to_owned(),
        )
        .await?;
        // A refresh replaces one subscription's rows; removing it deletes them.
        m.create_index(
            index("ix_calendar_subscription_events_subscription", CalendarSubscriptionEvents::Table)
                .col(CalendarSubscriptionEvents::SubscriptionId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(CalendarSubscriptionEvents::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(CalendarSubscriptions::Table).to_owned()).await?;
        Ok(())
    }
}
