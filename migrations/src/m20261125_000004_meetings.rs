//! Meetings feed: every accepted booking webhook stored verbatim, and one row per
//! scheduled meeting with its latest state.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookInbox {
    Table,
    Id,
    Source,
    Event,
    DedupeKey,
    Body,
    ReceivedAt,
    ProcessedAt,
    Error,
}

#[derive(DeriveIden)]
enum Meetings {
    Table,
    Id,
    EventUri,
    Name,
    Status,
    InviteeUri,
    InviteeName,
    InviteeEmail,
    InviteeTimezone,
    HostEmail,
    StartTime,
    EndTime,
    Location,
    CanceledBy,
    CancelReason,
    CancelerType,
    RescheduledTo,
    RescheduledFrom,
    NoShow,
    NoShowAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(WebhookInbox::Table)
                .col(id(WebhookInbox::Id))
                .col(varchar(WebhookInbox::Source, 32))
                .col(varchar(WebhookInbox::Event, 64))
                // (event, invitee uri): a retried delivery finds its first copy here.
                .col(varchar(WebhookInbox::DedupeKey, 191))
                .col(long_text(WebhookInbox::Body))
                .col(millis(WebhookInbox::ReceivedAt))
                .col(millis_null(WebhookInbox::ProcessedAt))
                .col(varchar_null(WebhookInbox::Error, 500))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_webhook_inbox_dedupe", WebhookInbox::Table)
                .col(WebhookInbox::Source)
                .col(WebhookInbox::DedupeKey)
                .unique()
                .to_owned(),
        )
        .await?;
        // The fold backstop: `WHERE processed_at IS NULL ORDER BY id`.
        m.create_index(
            index("ix_webhook_inbox_unprocessed", WebhookInbox::Table)
                .col(WebhookInbox::ProcessedAt)
                .col(WebhookInbox::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Meetings::Table)
                .col(id(Meetings::Id))
                .col(varchar(Meetings::EventUri, 191))
                .col(varchar(Meetings::Name, 255))
                .col(varchar(Meetings::Status, 16))
                .col(varchar(Meetings::InviteeUri, 191))
                .col(varchar(Meetings::InviteeName, 255))
                .col(varchar(Meetings::InviteeEmail, 255))
                .col(varchar(Meetings::InviteeTimezone, 64))
                .col(varchar(Meetings::HostEmail, 191))
                .col(millis(Meetings::StartTime))
                .col(millis(Meetings::EndTime))
                .col(varchar(Meetings::Location, 500))
                .col(varchar_null(Meetings::CanceledBy, 255))
                .col(varchar_null(Meetings::CancelReason, 1000))
                .col(varchar_null(Meetings::CancelerType, 32))
                .col(varchar_null(Meetings::RescheduledTo, 191))
                .col(varchar_null(Meetings::RescheduledFrom, 191))
                .col(boolean(Meetings::NoShow))
                // When the no-show fact last applied was sent: later facts win, whatever
                // order they arrive in.
                .col(millis_null(Meetings::NoShowAt))
                .col(millis(Meetings::CreatedAt))
                .col(millis(Meetings::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_meetings_event_uri", Meetings::Table).col(Meetings::EventUri).unique().to_owned())
            .await?;
        m.create_index(index("ix_meetings_invitee", Meetings::Table).col(Meetings::InviteeUri).to_owned()).await?;
        // The listing filters: by time, by host and time, by status and time.
        m.create_index(index("ix_meetings_start", Meetings::Table).col(Meetings::StartTime).to_owned()).await?;
        m.create_index(
            index("ix_meetings_host_start", Meetings::Table).col(Meetings::HostEmail).col(Meetings::StartTime).to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_meetings_status_start", Meetings::Table).col(Meetings::Status).col(Meetings::StartTime).to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Meetings::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(WebhookInbox::Table).to_owned()).await
    }
}
