//! Broker tables (see migrations `m20261123_000002_broker` and `m20261203_000009_outbox`)
//! and the storage of lanes, which publishing, the dispatcher and the administration all
//! move.

use super::service::CHUNK;
use crate::error::{AppError, AppResult};
use crate::platform::db::for_update;
use crate::platform::time::now_ms;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use std::collections::HashSet;

pub mod topic {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "broker_topics")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub name: String,
        pub description: String,
        pub members_may_publish: bool,
        pub last_seq: i64,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod subscriber {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "broker_subscribers")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub name: String,
        pub url: String,
        pub secret: String,
        pub previous_secret: Option<String>,
        pub previous_secret_until: Option<i64>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod subscription {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "broker_subscriptions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub subscriber_id: i64,
        pub pattern: String,
        pub state: crate::broker::domain::SubscriptionState,
        pub policy: crate::broker::domain::FailurePolicy,
        pub max_attempts: i32,
        pub retry_base_ms: Option<i64>,
        pub retry_max_ms: Option<i64>,
        pub disabled_reason: Option<String>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "broker_messages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub topic_id: i64,
        pub seq: i64,
        pub payload: String,
        pub idempotency_key: Option<String>,
        pub published_by: Option<i64>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Messages published but not yet sequenced: a business transaction inserts one row here
/// and takes no lock on anything shared; the sequencer moves committed rows into
/// `broker_messages` (keeping their id) with the topic's next sequence numbers.
pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "broker_outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub topic_id: i64,
        pub payload: String,
        pub idempotency_key: Option<String>,
        pub published_by: Option<i64>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lane {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "broker_lanes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub subscription_id: i64,
        pub subscriber_id: i64,
        pub topic_id: i64,
        pub pending: i64,
        pub next_due_at: Option<i64>,
        pub active: bool,
        pub blocked: bool,
        pub lease_version: i64,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "broker_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub lane_id: i64,
        pub message_id: i64,
        pub subscriber_id: i64,
        pub state: crate::broker::domain::DeliveryState,
        pub attempts: i32,
        pub next_attempt_at: i64,
        pub last_status: Option<i32>,
        pub last_error: Option<String>,
        pub created_at: i64,
        pub finished_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod attempt {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "broker_attempts")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub delivery_id: i64,
        pub attempt: i32,
        pub started_at: i64,
        pub duration_ms: i64,
        pub status_code: Option<i32>,
        pub error: Option<String>,
        pub response_body: Option<String>,
        pub worker: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// ---------------------------------------------------------------------------------------
// Lanes: one per (subscription, topic), holding that pair's deliveries in order.

/// The lanes of `subs` for one topic, created where missing, locked for this transaction.
pub async fn lanes_for<C: ConnectionTrait>(conn: &C, topic_id: i64, subs: &[subscription::Model], now: i64) -> AppResult<Vec<lane::Model>> {
    ensure_lanes(conn, topic_id, subs, now).await?;
    let sub_ids: Vec<i64> = subs.iter().map(|s| s.id).collect();
    let find = lane::Entity::find().filter(lane::Column::TopicId.eq(topic_id)).filter(lane::Column::SubscriptionId.is_in(sub_ids));
    Ok(for_update(find, conn.get_database_backend()).all(conn).await?)
}

/// Creates the lanes of `subs` for one topic that do not exist yet. Lanes are normally
/// made when a subscription or a topic is created, so publishing finds them and only
/// takes row locks; this is the backstop for the races between those two. Insert-if-
/// missing without a prior locking read: no gap locks, so no deadlock between
/// publishers of different topics.
pub async fn ensure_lanes<C: ConnectionTrait>(conn: &C, topic_id: i64, subs: &[subscription::Model], now: i64) -> AppResult<()> {
    use sea_orm::sea_query::OnConflict;
    for subs in subs.chunks(CHUNK) {
        let sub_ids: Vec<i64> = subs.iter().map(|s| s.id).collect();
        let have: HashSet<i64> = lane::Entity::find()
            .select_only()
            .column(lane::Column::SubscriptionId)
            .filter(lane::Column::TopicId.eq(topic_id))
            .filter(lane::Column::SubscriptionId.is_in(sub_ids))
            .into_tuple::<i64>()
            .all(conn)
            .await?
            .into_iter()
            .collect();
        let missing: Vec<lane::ActiveModel> = subs
            .iter()
            .filter(|s| !have.contains(&s.id))
            .map(|s| lane::ActiveModel {
                subscription_id: Set(s.id),
                subscriber_id: Set(s.subscriber_id),
                topic_id: Set(topic_id),
                pending: Set(0),
                next_due_at: Set(None),
                active: Set(s.state == crate::broker::domain::SubscriptionState::Active),
                blocked: Set(false),
                lease_version: Set(0),
                created_at: Set(now),
                ..Default::default()
            })
            .collect();
        if missing.is_empty() {
            continue;
        }
        // A lane created meanwhile by someone else is left as it is (a no-op update).
        let keep = OnConflict::columns([lane::Column::SubscriptionId, lane::Column::TopicId])
            .update_column(lane::Column::SubscriptionId)
            .to_owned();
        lane::Entity::insert_many(missing).on_conflict(keep).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// Counts `added` new pending deliveries on each lane and schedules the idle ones. A lane
/// that is leased (due in the future), paused or blocked keeps its schedule: its worker,
/// resume or unblock will pick the new work up.
pub async fn enqueue_on_lanes<C: ConnectionTrait>(conn: &C, lane_ids: &[i64], added: i64, now: i64) -> AppResult<()> {
    lane::Entity::update_many()
        .col_expr(lane::Column::Pending, Expr::col(lane::Column::Pending).add(added))
        .col_expr(
            lane::Column::NextDueAt,
            Expr::case(
                Expr::col(lane::Column::NextDueAt)
                    .is_null()
                    .and(Expr::col(lane::Column::Active).eq(true))
                    .and(Expr::col(lane::Column::Blocked).eq(false)),
                now,
            )
            .finally(Expr::col(lane::Column::NextDueAt))
            .into(),
        )
        .filter(lane::Column::Id.is_in(lane_ids.to_vec()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Marks every lane of a subscription active or not. Activation schedules the idle lanes
/// that have work; deactivation unschedules them (a lane being delivered right now ends
/// its current request, then its worker sees the lane inactive and stops).
pub async fn set_lanes_active<C: ConnectionTrait>(conn: &C, subscription_id: i64, active: bool) -> AppResult<()> {
    let now = now_ms();
    let next = if active {
        Expr::case(
            Expr::col(lane::Column::Pending).gt(0).and(Expr::col(lane::Column::Blocked).eq(false)),
            Expr::col(lane::Column::NextDueAt).if_null(now),
        )
        .finally(Expr::col(lane::Column::NextDueAt))
        .into()
    } else {
        // A lane leased right now keeps its lease (its worker stops at its next record):
        // clearing it would let a resume hand the lane to a second worker meanwhile.
        Expr::case(Expr::col(lane::Column::NextDueAt).gt(now), Expr::col(lane::Column::NextDueAt))
            .finally(Expr::value(Option::<i64>::None))
            .into()
    };
    lane::Entity::update_many()
        .col_expr(lane::Column::Active, Expr::value(active))
        .col_expr(lane::Column::NextDueAt, next)
        .filter(lane::Column::SubscriptionId.eq(subscription_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Deliveries waiting on scheduled lanes (active, not blocked, with work), by
/// subscription: the backlog the dispatcher is working through. Served by the lanes' due
/// index; paused and blocked lanes (unscheduled) are on the subscriber pages.
pub async fn due_backlog<C: ConnectionTrait>(conn: &C) -> AppResult<Vec<(i64, i64)>> {
    use sea_orm::QuerySelect;
    // Summed here, not in SQL: MySQL's SUM is a DECIMAL, SQLite's an integer.
    let lanes: Vec<(i64, i64)> = lane::Entity::find()
        .select_only()
        .column(lane::Column::SubscriptionId)
        .column(lane::Column::Pending)
        // A range, not IS NOT NULL: SQLite uses the due index for it (due times are >= 0).
        .filter(lane::Column::NextDueAt.gte(0))
        .into_tuple()
        .all(conn)
        .await?;
    let mut by_subscription = std::collections::BTreeMap::new();
    for (subscription, pending) in lanes {
        *by_subscription.entry(subscription).or_insert(0) += pending;
    }
    Ok(by_subscription.into_iter().collect())
}

pub async fn lock_lane<C: ConnectionTrait>(conn: &C, id: i64) -> AppResult<lane::Model> {
    for_update(lane::Entity::find_by_id(id), conn.get_database_backend())
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("lane"))
}

/// Gives a lane back at the end of a worker's turn, if the worker still holds it
/// (`lease_version`). `head_due` is when the head the worker saw comes due (it waits for
/// its retry); `None` when the worker saw no pending head. Then the pending deliveries
/// are counted again under the lane's lock, because the lease holder is the only one who
/// will schedule the lane: work added during the turn (a sequencer appending to a leased
/// lane leaves its due time alone, so does an operator's retry) would otherwise wait until
/// the next publish — or forever. The count also heals a counter that drifted, which as
/// a bare "pending > 0" would have the lane claimed again and again with nothing to send.
pub async fn release_lane<C: ConnectionTrait>(conn: &C, lane_id: i64, lease_version: i64, head_due: Option<i64>) -> AppResult<()> {
    use sea_orm::PaginatorTrait;
    let l = lock_lane(conn, lane_id).await?;
    if l.lease_version != lease_version {
        return Ok(()); // another worker holds it now
    }
    let now = now_ms();
    let pending = match head_due {
        // A paused or blocked lane is not scheduled whatever it holds: no need to count.
        Some(_) => l.pending,
        None if !l.active || l.blocked => l.pending,
        None => {
            // What the worker's read of heads sees (a delivery whose message is gone is
            // no head: counted, it would have the lane claimed forever), by the
            // `(lane_id, state, id)` index and the messages' key.
            let counted = delivery::Entity::find()
                .join(sea_orm::JoinType::InnerJoin, delivery::Entity::belongs_to(message::Entity).from(delivery::Column::MessageId).to(message::Column::Id).into())
                .filter(delivery::Column::LaneId.eq(lane_id))
                .filter(delivery::Column::State.eq(super::domain::DeliveryState::Pending))
                .count(conn)
                .await?;
            counted as i64
        }
    };
    let next = (l.active && !l.blocked && pending > 0).then(|| Ord::max(head_due.unwrap_or(now), now));
    write_lane(conn, l.id, pending, l.blocked, next).await
}

/// Writes a lane's pending count and block flag; schedules it now when `due`, else idles
/// it — unless a worker holds it (due in the future), whose lease must not be cut short.
pub async fn reschedule_lane<C: ConnectionTrait>(conn: &C, lane: &lane::Model, pending: i64, blocked: bool, due: bool) -> AppResult<()> {
    let now = now_ms();
    let leased = lane.next_due_at.is_some_and(|t| t > now);
    let next = match (leased, due) {
        (true, _) => lane.next_due_at,
        (false, true) => Some(now),
        (false, false) => None,
    };
    write_lane(conn, lane.id, pending, blocked, next).await
}

/// Writes what a lane holds, whether it is blocked, and when it is next due (`None`:
/// idle), under the lock the caller took.
pub(super) async fn write_lane<C: ConnectionTrait>(conn: &C, id: i64, pending: i64, blocked: bool, next_due_at: Option<i64>) -> AppResult<()> {
    lane::Entity::update_many()
        .col_expr(lane::Column::Pending, Expr::value(pending))
        .col_expr(lane::Column::Blocked, Expr::value(blocked))
        .col_expr(lane::Column::NextDueAt, Expr::value(next_due_at))
        .filter(lane::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

