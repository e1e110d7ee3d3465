//! Chat: hot messages (unexpired, and expired ones not yet archived), the index of
//! archived ids, and the archive batches in the object store.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChatMessages {
    Table,
    Id,
    Username,
    SenderId,
    Sender,
    Text,
    CreatedAt,
    ExpirationDate,
}

#[derive(DeriveIden)]
enum ChatArchive {
    Table,
    MessageId,
    Username,
    SenderId,
    BatchKey,
    Line,
    ArchivedAt,
}

#[derive(DeriveIden)]
enum ChatBatches {
    Table,
    Id,
    ObjectKey,
    Messages,
    FirstId,
    LastId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ChatMessages::Table)
                // AUTOINCREMENT on SQLite / InnoDB's persistent counter on MySQL: ids are
                // never reused after archived rows leave this table.
                .col(id(ChatMessages::Id))
                .col(varchar(ChatMessages::Username, 32))
                .col(big_null(ChatMessages::SenderId))
                .col(varchar_null(ChatMessages::Sender, 32))
                .col(ColumnDef::new(ChatMessages::Text).text().not_null())
                .col(millis(ChatMessages::CreatedAt))
                .col(millis(ChatMessages::ExpirationDate))
                .to_owned(),
        )
        .await?;
        // The inbox read: `WHERE username = ? AND expiration_date > now`.
        m.create_index(
            index("ix_chat_messages_inbox", ChatMessages::Table)
                .col(ChatMessages::Username)
                .col(ChatMessages::ExpirationDate)
                .to_owned(),
        )
        .await?;
        // The archiver: `WHERE expiration_date <= now ORDER BY expiration_date`.
        m.create_index(
            index("ix_chat_messages_expiration", ChatMessages::Table).col(ChatMessages::ExpirationDate).to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ChatArchive::Table)
                .col(ColumnDef::new(ChatArchive::MessageId).big_integer().not_null().primary_key())
                .col(varchar(ChatArchive::Username, 32))
                .col(big_null(ChatArchive::SenderId))
                .col(varchar(ChatArchive::BatchKey, 191))
                .col(int(ChatArchive::Line))
                .col(millis(ChatArchive::ArchivedAt))
                .to_owned(),
        )
        .await?;
        // Retention removes a batch's index rows by key.
        m.create_index(index("ix_chat_archive_batch", ChatArchive::Table).col(ChatArchive::BatchKey).to_owned()).await?;

        m.create_table(
            Table::create()
                .table(ChatBatches::Table)
                .col(id(ChatBatches::Id))
                .col(varchar(ChatBatches::ObjectKey, 191))
                .col(int(ChatBatches::Messages))
                .col(big(ChatBatches::FirstId))
                .col(big(ChatBatches::LastId))
                .col(millis(ChatBatches::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_chat_batches_key", ChatBatches::Table).col(ChatBatches::ObjectKey).unique().to_owned(),
        )
        .await?;
        m.create_index(index("ix_chat_batches_created", ChatBatches::Table).col(ChatBatches::CreatedAt).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [ChatBatches::Table.into_iden(), ChatArchive::Table.into_iden(), ChatMessages::Table.into_iden()] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
