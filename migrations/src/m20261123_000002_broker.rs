//! The webhook broker: topics, subscribers, subscriptions, messages, and the per
//! (subscription, topic) delivery lanes that keep delivery in publish order.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BrokerTopics {
    Table,
    Id,
    Name,
    Description,
    MembersMayPublish,
    LastSeq,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BrokerSubscribers {
    Table,
    Id,
    Name,
    Url,
    Secret,
    PreviousSecret,
    PreviousSecretUntil,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BrokerSubscriptions {
    Table,
    Id,
    SubscriberId,
    Pattern,
    State,
    Policy,
    MaxAttempts,
    RetryBaseMs,
    RetryMaxMs,
    DisabledReason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BrokerMessages {
    Table,
    Id,
    TopicId,
    Seq,
    Payload,
    IdempotencyKey,
    PublishedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BrokerLanes {
    Table,
    Id,
    SubscriptionId,
    SubscriberId,
    TopicId,
    Pending,
    NextDueAt,
    Active,
    Blocked,
    LeaseVersion,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BrokerDeliveries {
    Table,
    Id,
    LaneId,
    MessageId,
    SubscriberId,
    State,
    Attempts,
    NextAttemptAt,
    LastStatus,
    LastError,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum BrokerAttempts {
    Table,
    Id,
    DeliveryId,
    Attempt,
    StartedAt,
    DurationMs,
    StatusCode,
    Error,
    ResponseBody,
    Worker,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(BrokerTopics::Table)
                .col(id(BrokerTopics::Id))
                .col(varchar(BrokerTopics::Name, 130))
                .col(varchar(BrokerTopics::Description, 500))
                .col(boolean(BrokerTopics::MembersMayPublish))
                // Publish order: each message takes the next number under the topic's row lock.
                .col(big(BrokerTopics::LastSeq))
                .col(millis(BrokerTopics::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_broker_topics_name", BrokerTopics::Table).col(BrokerTopics::Name).unique().to_owned())
            .await?;

        m.create_table(
            Table::create()
                .table(BrokerSubscribers::Table)
                .col(id(BrokerSubscribers::Id))
                .col(varchar(BrokerSubscribers::Name, 100))
                .col(varchar(BrokerSubscribers::Url, 2048))
                .col(varchar(BrokerSubscribers::Secret, 100))
                .col(varchar_null(BrokerSubscribers::PreviousSecret, 100))
                .col(millis_null(BrokerSubscribers::PreviousSecretUntil))
                .col(millis(BrokerSubscribers::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BrokerSubscriptions::Table)
                .col(id(BrokerSubscriptions::Id))
                .col(big(BrokerSubscriptions::SubscriberId))
                .col(varchar(BrokerSubscriptions::Pattern, 130))
                .col(varchar(BrokerSubscriptions::State, 16))
                .col(varchar(BrokerSubscriptions::Policy, 16))
                .col(int(BrokerSubscriptions::MaxAttempts))
                .col(big_null(BrokerSubscriptions::RetryBaseMs))
                .col(big_null(BrokerSubscriptions::RetryMaxMs))
                .col(varchar_null(BrokerSubscriptions::DisabledReason, 500))
                .col(millis(BrokerSubscriptions::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(BrokerSubscriptions::Table, BrokerSubscriptions::SubscriberId)
                        .to(BrokerSubscribers::Table, BrokerSubscribers::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_broker_subscriptions_sub_pattern", BrokerSubscriptions::Table)
                .col(BrokerSubscriptions::SubscriberId)
                .col(BrokerSubscriptions::Pattern)
                .unique()
                .to_owned(),
        )
        .await?;
        // Publishing finds the subscriptions of a topic by `pattern IN (topic, 'domain:*', '*')`.
        m.create_index(
            index("ix_broker_subscriptions_pattern", BrokerSubscriptions::Table).col(BrokerSubscriptions::Pattern).to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BrokerMessages::Table)
                .col(id(BrokerMessages::Id))
                .col(big(BrokerMessages::TopicId))
                .col(big(BrokerMessages::Seq))
                .col(long_text(BrokerMessages::Payload))
                .col(varchar_null(BrokerMessages::IdempotencyKey, 191))
                .col(big_null(BrokerMessages::PublishedBy))
                .col(millis(BrokerMessages::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_broker_messages_topic_seq", BrokerMessages::Table)
                .col(BrokerMessages::TopicId)
                .col(BrokerMessages::Seq)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_broker_messages_idempotency", BrokerMessages::Table)
                .col(BrokerMessages::TopicId)
                .col(BrokerMessages::IdempotencyKey)
                .unique()
                .to_owned(),
        )
        .await?;
        // Replay "everything since a time" walks a topic's messages by age.
        m.create_index(
            index("ix_broker_messages_topic_created", BrokerMessages::Table)
                .col(BrokerMessages::TopicId)
                .col(BrokerMessages::CreatedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BrokerLanes::Table)
                .col(id(BrokerLanes::Id))
                .col(big(BrokerLanes::SubscriptionId))
                .col(big(BrokerLanes::SubscriberId))
                .col(big(BrokerLanes::TopicId))
                .col(big(BrokerLanes::Pending))
                // NULL: nothing to do now (idle, paused or blocked). Otherwise when the lane
                // is next due; a dispatcher's claim pushes it forward as its lease.
                .col(millis_null(BrokerLanes::NextDueAt))
                .col(boolean(BrokerLanes::Active))
                .col(boolean(BrokerLanes::Blocked))
                .col(big(BrokerLanes::LeaseVersion))
                .col(millis(BrokerLanes::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_broker_lanes_subscription_topic", BrokerLanes::Table)
                .col(BrokerLanes::SubscriptionId)
                .col(BrokerLanes::TopicId)
                .unique()
                .to_owned(),
        )
        .await?;
        // The dispatcher's claim: `WHERE next_due_at <= now ORDER BY next_due_at`.
        m.create_index(index("ix_broker_lanes_due", BrokerLanes::Table).col(BrokerLanes::NextDueAt).to_owned()).await?;
        m.create_index(
            index("ix_broker_lanes_subscriber", BrokerLanes::Table).col(BrokerLanes::SubscriberId).to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BrokerDeliveries::Table)
                .col(id(BrokerDeliveries::Id))
                .col(big(BrokerDeliveries::LaneId))
                .col(big(BrokerDeliveries::MessageId))
                .col(big(BrokerDeliveries::SubscriberId))
                .col(varchar(BrokerDeliveries::State, 16))
                .col(int(BrokerDeliveries::Attempts))
                .col(millis(BrokerDeliveries::NextAttemptAt))
                .col(ColumnDef::new(BrokerDeliveries::LastStatus).integer().null())
                .col(varchar_null(BrokerDeliveries::LastError, 500))
                .col(millis(BrokerDeliveries::CreatedAt))
                .col(millis_null(BrokerDeliveries::FinishedAt))
                .to_owned(),
        )
        .await?;
        // The head of a lane: `WHERE lane_id = ? AND state = 'pending' ORDER BY id LIMIT 1`.
        m.create_index(
            index("ix_broker_deliveries_lane_state", BrokerDeliveries::Table)
                .col(BrokerDeliveries::LaneId)
                .col(BrokerDeliveries::State)
                .col(BrokerDeliveries::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_broker_deliveries_subscriber", BrokerDeliveries::Table)
                .col(BrokerDeliveries::SubscriberId)
                .col(BrokerDeliveries::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_broker_deliveries_message", BrokerDeliveries::Table).col(BrokerDeliveries::MessageId).to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BrokerAttempts::Table)
                .col(id(BrokerAttempts::Id))
                .col(big(BrokerAttempts::DeliveryId))
                .col(int(BrokerAttempts::Attempt))
                .col(millis(BrokerAttempts::StartedAt))
                .col(big(BrokerAttempts::DurationMs))
                .col(ColumnDef::new(BrokerAttempts::StatusCode).integer().null())
                .col(varchar_null(BrokerAttempts::Error, 500))
                .col(ColumnDef::new(BrokerAttempts::ResponseBody).text().null())
                // Which dispatcher (host-pid) made the attempt.
                .col(varchar(BrokerAttempts::Worker, 64))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_broker_attempts_delivery", BrokerAttempts::Table)
                .col(BrokerAttempts::DeliveryId)
                .col(BrokerAttempts::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BrokerAttempts::Table.into_iden(),
            BrokerDeliveries::Table.into_iden(),
            BrokerLanes::Table.into_iden(),
            BrokerMessages::Table.into_iden(),
            BrokerSubscriptions::Table.into_iden(),
            BrokerSubscribers::Table.into_iden(),
            BrokerTopics::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
