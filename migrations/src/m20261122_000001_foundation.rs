//! Accounts, sessions, API tokens, the durable job queue and the change log that feeds
//! live pages.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Username,
    DisplayName,
    PasswordHash,
    Role,
    TimeZone,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    UserId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    Name,
    TokenHash,
    Scopes,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Payload,
    State,
    RunAt,
    Attempts,
    MaxAttempts,
    LockedBy,
    LastError,
    UniqueKey,
    IntervalMs,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ChangeLog {
    Table,
    Id,
    Channel,
    Payload,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(id(Users::Id))
                .col(varchar(Users::Username, 32))
                .col(varchar(Users::DisplayName, 100))
                .col(varchar(Users::PasswordHash, 255))
                .col(varchar(Users::Role, 16))
                .col(varchar(Users::TimeZone, 64))
                .col(millis(Users::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_users_username", Users::Table).col(Users::Username).unique().to_owned())
            .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(id(Sessions::Id))
                .col(varchar(Sessions::TokenHash, 64))
                .col(big(Sessions::UserId))
                .col(millis(Sessions::CreatedAt))
                .col(millis(Sessions::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_sessions_token", Sessions::Table).col(Sessions::TokenHash).unique().to_owned())
            .await?;
        // Sweeping expired sessions walks this index, never the table.
        m.create_index(index("ix_sessions_expires", Sessions::Table).col(Sessions::ExpiresAt).to_owned())
            .await?;
        m.create_index(index("ix_sessions_user", Sessions::Table).col(Sessions::UserId).to_owned())
            .await?;

        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(id(ApiTokens::Id))
                .col(big(ApiTokens::UserId))
                .col(varchar(ApiTokens::Name, 100))
                .col(varchar(ApiTokens::TokenHash, 64))
                .col(varchar(ApiTokens::Scopes, 255))
                .col(millis(ApiTokens::CreatedAt))
                .col(millis_null(ApiTokens::LastUsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiTokens::Table, ApiTokens::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_api_tokens_hash", ApiTokens::Table).col(ApiTokens::TokenHash).unique().to_owned())
            .await?;
        m.create_index(index("ix_api_tokens_user", ApiTokens::Table).col(ApiTokens::UserId).to_owned())
            .await?;

        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(id(Jobs::Id))
                .col(varchar(Jobs::Kind, 64))
                .col(long_text(Jobs::Payload))
                .col(varchar(Jobs::State, 16))
                .col(millis(Jobs::RunAt))
                .col(int(Jobs::Attempts))
                .col(int(Jobs::MaxAttempts))
                .col(varchar_null(Jobs::LockedBy, 64))
                .col(long_text_null(Jobs::LastError))
                .col(varchar_null(Jobs::UniqueKey, 191))
                .col(big_null(Jobs::IntervalMs))
                .col(millis(Jobs::CreatedAt))
                .to_owned(),
        )
        .await?;
        // The claim query: `WHERE state = 'queued' AND run_at <= now ORDER BY run_at`.
        m.create_index(index("ix_jobs_due", Jobs::Table).col(Jobs::State).col(Jobs::RunAt).to_owned())
            .await?;
        // Singleton and periodic jobs (NULLs do not collide on either engine).
        m.create_index(index("ux_jobs_unique_key", Jobs::Table).col(Jobs::UniqueKey).unique().to_owned())
            .await?;

        m.create_table(
            Table::create()
                .table(ChangeLog::Table)
                .col(id(ChangeLog::Id))
                .col(varchar(ChangeLog::Channel, 64))
                .col(long_text(ChangeLog::Payload))
                .col(millis(ChangeLog::CreatedAt))
                .to_owned(),
        )
        .await?;
        // Readers tail by primary key (`id > last_seen`); pruning goes by age.
        m.create_index(index("ix_change_log_created", ChangeLog::Table).col(ChangeLog::CreatedAt).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ChangeLog::Table.into_iden(),
            Jobs::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
