//! Schema migrations for Switchboard. The same migrations run on SQLite (embedded default)
//! and MySQL/MariaDB (production).
//!
//! Conventions every table follows:
//! - timestamps are `BIGINT` milliseconds since the Unix epoch (UTC): they compare and
//!   index identically on both engines, unlike text datetimes on SQLite or second-precision
//!   `DATETIME` on MySQL;
//! - every query a request path or periodic job runs is served by an index created in the
//!   same migration as its table;
//! - indexed strings are `VARCHAR(<=191)` so utf8mb4 keys fit InnoDB's limits.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_foundation;
mod m20261123_000002_broker;
mod m20261124_000003_chat;
mod m20261125_000004_meetings;
mod m20261126_000005_scheduler;
mod m20261127_000006_wages;
mod m20261201_000007_security;
mod m20261202_000008_wage_copy;
mod m20261203_000009_outbox;
mod m20261204_000010_calendar_spans;
mod m20261206_000011_recurrence;
mod m20261206_000012_booking_pages;
mod m20261207_000013_calendar_subscriptions;
mod m20261207_000014_bookings_by_event;
mod columns;


pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_foundation::Migration),
            Box::new(m20261123_000002_broker::Migration),
            Box::new(m20261124_000003_chat::Migration),
            Box::new(m20261125_000004_meetings::Migration),
            Box::new(m20261126_000005_scheduler::Migration),
            Box::new(m20261127_000006_wages::Migration),
            Box::new(m20261201_000007_security::Migration),
            Box::new(m20261202_000008_wage_copy::Migration),
            Box::new(m20261203_000009_outbox::Migration),
            Box::new(m20261204_000010_calendar_spans::Migration),
            Box::new(m20261206_000011_recurrence::Migration),
            Box::new(m20261206_000012_booking_pages::Migration),
            Box::new(m20261207_000013_calendar_subscriptions::Migration),
            Box::new(m20261207_000014_bookings_by_event::Migration),
        ]
    }
}
