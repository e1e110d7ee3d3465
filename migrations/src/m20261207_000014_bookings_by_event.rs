//! Bookings by their calendar event: when the owner deletes the event a booking made, the
//! booking is canceled with it (the deletion looks the booking up by its event).

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bookings {
    Table,
    EventId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index("ix_bookings_event", Bookings::Table).col(Bookings::EventId).to_owned()).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_bookings_event").table(Bookings::Table).to_owned()).await?;
        Ok(())
    }
}
