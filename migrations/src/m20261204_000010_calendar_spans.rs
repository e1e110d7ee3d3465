//! The longest event on each calendar. Finding the events that overlap a time range by
//! the `(owner_id, start_at)` index has to start looking as far before the range as an
//! event can last; with the global bound (62 days) every overlap check and every week
//! shown walked two months of a busy calendar's events. Bounded by the calendar's own
//! longest event instead — an hour or two on most calendars — it walks a handful.
//! Only ever raised (an event's deletion leaves it; it is a bound, not a statistic).

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CalendarSpans {
    Table,
    OwnerId,
    LongestMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CalendarSpans::Table)
                .col(ColumnDef::new(CalendarSpans::OwnerId).big_integer().not_null().primary_key())
                .col(big(CalendarSpans::LongestMs))
                .to_owned(),
        )
        .await?;
        // Once, here: the calendars that already have events.
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO calendar_spans (owner_id, longest_ms) \
                 SELECT owner_id, MAX(end_at - start_at) FROM calendar_events GROUP BY owner_id",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(CalendarSpans::Table).to_owned()).await?;
        Ok(())
    }
}
