//! Booking pages: a user's availability (weekly hours in their zone, slot length,
//! buffers, notice, how far ahead), and the bookings made on it. A booking is an event
//! on the owner's calendar and a meeting in the meetings feed; its row keeps who booked
//! and the digest of the secret that cancels it. The page's row is also what two
//! bookings for one calendar queue on, so that only one of two visitors racing for a
//! slot gets it.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BookingPages {
    Table,
    OwnerId,
    Enabled,
    Title,
    WeeklyHours,
    TimeZone,
    SlotMinutes,
    BufferBeforeMinutes,
    BufferAfterMinutes,
    MinNoticeMinutes,
    HorizonDays,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
    OwnerId,
    EventId,
    StartAt,
    EndAt,
    InviteeName,
    InviteeEmail,
    InviteeZone,
    CancelHash,
    Status,
    CreatedAt,
    CanceledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(BookingPages::Table)
                .col(ColumnDef::new(BookingPages::OwnerId).big_integer().not_null().primary_key())
                .col(boolean(BookingPages::Enabled))
                .col(varchar(BookingPages::Title, 100))
                // `MO=09:00-12:00,13:00-17:00;TU=…`, in `time_zone`.
                .col(varchar(BookingPages::WeeklyHours, 1000))
                .col(varchar(BookingPages::TimeZone, 64))
                .col(int(BookingPages::SlotMinutes))
                .col(int(BookingPages::BufferBeforeMinutes))
                .col(int(BookingPages::BufferAfterMinutes))
                .col(int(BookingPages::MinNoticeMinutes))
                .col(int(BookingPages::HorizonDays))
                .col(millis(BookingPages::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Bookings::Table)
                .col(id(Bookings::Id))
                .col(big(Bookings::OwnerId))
                .col(big_null(Bookings::EventId))
                .col(millis(Bookings::StartAt))
                .col(millis(Bookings::EndAt))
                .col(varchar(Bookings::InviteeName, 100))
                .col(varchar(Bookings::InviteeEmail, 254))
                .col(varchar(Bookings::InviteeZone, 64))
                .col(varchar(Bookings::CancelHash, 64))
                .col(varchar(Bookings::Status, 16))
                .col(millis(Bookings::CreatedAt))
                .col(millis_null(Bookings::CanceledAt))
                .to_owned(),
        )
        .await?;
        // A cancel link finds its booking by the digest of its secret.
        m.create_index(index("ux_bookings_cancel_hash", Bookings::Table).col(Bookings::CancelHash).unique().to_owned()).await?;
        // An owner's bookings by time (their list, and the booking's own event).
        m.create_index(index("ix_bookings_owner_start", Bookings::Table).col(Bookings::OwnerId).col(Bookings::StartAt).to_owned()).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Bookings::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(BookingPages::Table).to_owned()).await?;
        Ok(())
    }
}
