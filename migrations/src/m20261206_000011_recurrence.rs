//! Recurring events. A series is one `calendar_events` row with a rule: its own times are
//! the first occurrence's, `exceptions` lists the occurrences it skips (deleted, or
//! changed on their own), and `series_end` is where its last occurrence ends (9999 for
//! a series without end) — so "the series of this calendar still running at `from`" is a
//! range of one index, not an expansion of every series in the table. An occurrence
//! changed on its own is a row of its own pointing at its series (`series_id`) and the
//! start it replaces (`recurrence_at`, iCalendar's RECURRENCE-ID).

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CalendarEvents {
    Table,
    OwnerId,
    Recurring,
    Rrule,
    Exceptions,
    SeriesEnd,
    SeriesId,
    RecurrenceAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        let columns = [
            ColumnDef::new(CalendarEvents::Recurring).boolean().not_null().default(false).take(),
            varchar_null(CalendarEvents::Rrule, 500),
            long_text_null(CalendarEvents::Exceptions),
            ColumnDef::new(CalendarEvents::SeriesEnd).big_integer().not_null().default(0).take(),
            big_null(CalendarEvents::SeriesId),
            millis_null(CalendarEvents::RecurrenceAt),
        ];
        for mut column in columns {
            m.alter_table(Table::alter().table(CalendarEvents::Table).add_column(&mut column).to_owned()).await?;
        }
        // Every event so far is a single one: its series ends where it does.
        m.get_connection().execute_unprepared("UPDATE calendar_events SET series_end = end_at").await?;
        // A calendar's series overlapping a range: `owner_id = ? AND recurring AND series_end > from`.
        m.create_index(
            index("ix_calendar_events_owner_series", CalendarEvents::Table)
                .col(CalendarEvents::OwnerId)
                .col(CalendarEvents::Recurring)
                .col(CalendarEvents::SeriesEnd)
                .to_owned(),
        )
        .await?;
        // A series' changed occurrences, and at most one per occurrence.
        m.create_index(
            index("ux_calendar_events_series_occurrence", CalendarEvents::Table)
                .col(CalendarEvents::SeriesId)
                .col(CalendarEvents::RecurrenceAt)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ux_calendar_events_series_occurrence").table(CalendarEvents::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("ix_calendar_events_owner_series").table(CalendarEvents::Table).to_owned()).await?;
        for column in [
            CalendarEvents::RecurrenceAt,
            CalendarEvents::SeriesId,
            CalendarEvents::SeriesEnd,
            CalendarEvents::Exceptions,
            CalendarEvents::Rrule,
            CalendarEvents::Recurring,
        ] {
            m.alter_table(Table::alter().table(CalendarEvents::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
