//! Security: the first-administrator claim and setup tokens, expiring API tokens, feed
//! tokens stored hashed and sealed, sealed webhook secrets, and exact-channel change reads.

use crate::columns::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccountClaims {
    Table,
    Claim,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AdminSetupTokens {
    Table,
    TokenHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum CalendarFeedTokens {
    Table,
    UserId,
    TokenHash,
    TokenSealed,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ChangeLog {
    Table,
    Channel,
    Id,
}

#[derive(DeriveIden)]
enum BrokerSubscribers {
    Table,
    Secret,
    PreviousSecret,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One row per one-of-a-kind role; the primary key makes "first" race-free.
        m.create_table(
            Table::create()
                .table(AccountClaims::Table)
                .col(ColumnDef::new(AccountClaims::Claim).string_len(64).not_null().primary_key())
                .col(big(AccountClaims::UserId))
                .col(millis(AccountClaims::CreatedAt))
                .to_owned(),
        )
        .await?;
        // An installation that has an admin already has had its first one.
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO account_claims (claim, user_id, created_at) \
                 SELECT 'first_admin', id, created_at FROM users WHERE role = 'admin' ORDER BY id LIMIT 1",
            )
            .await?;

        m.create_table(
            Table::create()
                .table(AdminSetupTokens::Table)
                .col(ColumnDef::new(AdminSetupTokens::TokenHash).string_len(64).not_null().primary_key())
                .col(millis(AdminSetupTokens::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.alter_table(Table::alter().table(ApiTokens::Table).add_column(millis_null(ApiTokens::ExpiresAt)).to_owned())
            .await?;

        // Feed tokens by digest (lookup) and sealed (for the owner to see again); the
        // clear-text `calendar_feeds` rows are moved here at start-up, where the key is.
        m.create_table(
            Table::create()
                .table(CalendarFeedTokens::Table)
                .col(ColumnDef::new(CalendarFeedTokens::UserId).big_integer().not_null().primary_key())
                .col(varchar(CalendarFeedTokens::TokenHash, 64))
                .col(varchar(CalendarFeedTokens::TokenSealed, 255))
                .col(millis(CalendarFeedTokens::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_calendar_feed_tokens_hash", CalendarFeedTokens::Table).col(CalendarFeedTokens::TokenHash).unique().to_owned(),
        )
        .await?;

        // Live streams read their backlog by exact channel, then id.
        m.create_index(index("ix_change_log_channel_id", ChangeLog::Table).col(ChangeLog::Channel).col(ChangeLog::Id).to_owned())
            .await?;

        // Sealed secrets are longer than the clear ones. (SQLite does not enforce
        // VARCHAR lengths and cannot alter a column; MySQL must widen them.) And on MySQL
        // an idempotency key compared case-insensitively (the default collation) made one
        // publisher's "Order-7" a duplicate of another's "order-7": binary, as on SQLite.
        if m.get_database_backend() == DbBackend::MySql {
            m.get_connection()
                .execute_unprepared("ALTER TABLE broker_messages MODIFY idempotency_key VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL")
                .await?;
            m.alter_table(
                Table::alter()
                    .table(BrokerSubscribers::Table)
                    .modify_column(varchar(BrokerSubscribers::Secret, 255))
                    .modify_column(varchar_null(BrokerSubscribers::PreviousSecret, 255))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_change_log_channel_id").table(ChangeLog::Table).to_owned()).await?;
        for t in [CalendarFeedTokens::Table.into_iden(), AdminSetupTokens::Table.into_iden(), AccountClaims::Table.into_iden()] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        m.alter_table(Table::alter().table(ApiTokens::Table).drop_column(ApiTokens::ExpiresAt).to_owned()).await?;
        Ok(())
    }
}
