//! The broker's outbox. Publishing used to number a message under its topic row's lock
//! inside the producer's transaction, so every producer of a topic queued on that row;
//! now a producer only inserts here, and the sequencer moves committed rows into
//! `broker_messages` (keeping their ids) in batches. Ids continue after the messages'
//! own, so a message keeps the id its publisher was given.

use crate::columns::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BrokerOutbox {
    Table,
    Id,
    TopicId,
    Payload,
    IdempotencyKey,
    PublishedBy,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to the topic on purpose: on InnoDB it would make every publish
        // take a shared lock on the topic row, which the sequencer holds exclusively.
        m.create_table(
            Table::create()
                .table(BrokerOutbox::Table)
                .col(id(BrokerOutbox::Id))
                .col(big(BrokerOutbox::TopicId))
                .col(long_text(BrokerOutbox::Payload))
                .col(varchar_null(BrokerOutbox::IdempotencyKey, 191))
                .col(big_null(BrokerOutbox::PublishedBy))
                .col(millis(BrokerOutbox::CreatedAt))
                .to_owned(),
        )
        .await?;
        // The sequencer's read: `WHERE topic_id = ? ORDER BY id LIMIT n`.
        m.create_index(index("ix_broker_outbox_topic", BrokerOutbox::Table).col(BrokerOutbox::TopicId).col(BrokerOutbox::Id).to_owned())
            .await?;
        m.create_index(
            index("ux_broker_outbox_idempotency", BrokerOutbox::Table)
                .col(BrokerOutbox::TopicId)
                .col(BrokerOutbox::IdempotencyKey)
                .unique()
                .to_owned(),
        )
        .await?;
        let conn = m.get_connection();
        if m.get_database_backend() == DbBackend::MySql {
            // Keys compare as bytes, as on SQLite and as in broker_messages.
            conn.execute_unprepared("ALTER TABLE broker_outbox MODIFY idempotency_key VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL")
                .await?;
        }
        // Start the outbox's ids after the messages' (a placeholder row sets the counter
        // on both engines, and the counter stays when it is deleted).
        conn.execute_unprepared(
            "INSERT INTO broker_outbox (id, topic_id, payload, created_at) \
             SELECT MAX(id), 0, '', 0 FROM broker_messages HAVING MAX(id) IS NOT NULL",
        )
        .await?;
        conn.execute_unprepared("DELETE FROM broker_outbox").await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(BrokerOutbox::Table).to_owned()).await?;
        Ok(())
    }
}
