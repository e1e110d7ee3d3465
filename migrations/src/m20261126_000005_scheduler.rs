//! Scheduler: events on users' calendars, calendar sharing, and secret iCal feed tokens.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    CalendarShared,
}

#[derive(DeriveIden)]
enum CalendarEvents {
    Table,
    Id,
    Uid,
    OwnerId,
    Title,
    Description,
    Location,
    StartAt,
    EndAt,
    AllDay,
    TimeZone,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CalendarFeeds {
    Table,
    UserId,
    Token,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Whether others see a user's events in full, or only as free/busy.
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(ColumnDef::new(Users::CalendarShared).boolean().not_null().default(false))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CalendarEvents::Table)
                .col(id(CalendarEvents::Id))
                // Stable iCalendar UID, never reused.
                .col(varchar(CalendarEvents::Uid, 100))
                .col(big(CalendarEvents::OwnerId))
                .col(varchar(CalendarEvents::Title, 200))
                .col(ColumnDef::new(CalendarEvents::Description).text().not_null())
                .col(varchar(CalendarEvents::Location, 500))
                .col(millis(CalendarEvents::StartAt))
                .col(millis(CalendarEvents::EndAt))
                .col(boolean(CalendarEvents::AllDay))
                .col(varchar(CalendarEvents::TimeZone, 64))
                // Optimistic concurrency; also the iCalendar SEQUENCE (version - 1).
                .col(int(CalendarEvents::Version))
                .col(millis(CalendarEvents::CreatedAt))
                .col(millis(CalendarEvents::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // A user's events in a time range: `owner_id = ? AND start_at BETWEEN …`.
        m.create_index(
            index("ix_calendar_events_owner_start", CalendarEvents::Table)
                .col(CalendarEvents::OwnerId)
                .col(CalendarEvents::StartAt)
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_calendar_events_uid", CalendarEvents::Table).col(CalendarEvents::Uid).unique().to_owned())
            .await?;

        m.create_table(
            Table::create()
                .table(CalendarFeeds::Table)
                .col(ColumnDef::new(CalendarFeeds::UserId).big_integer().not_null().primary_key())
                .col(varchar(CalendarFeeds::Token, 64))
                .col(millis(CalendarFeeds::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_calendar_feeds_token", CalendarFeeds::Table).col(CalendarFeeds::Token).unique().to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(CalendarFeeds::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(CalendarEvents::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Users::Table).drop_column(Users::CalendarShared).to_owned()).await
    }
}
