//! The delivery log: what was sent to whom and how it went, and an admin's hand on it —
//! skip a stuck head, retry it, replay messages — plus the retention that prunes it.

use crate::db_write;
use super::domain::{DeliveryState, SubscriptionState};
use super::admin::{subscriber, topics_matching};
use super::domain::*;
use super::publish::pending_delivery;
use super::service::{channel, CHUNK, REPLAY_LIMIT};
use super::store::{attempt, delivery, enqueue_on_lanes, lanes_for, lock_lane, message, reschedule_lane, subscription, topic};
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::changes;
use crate::platform::db::{for_update, Db};
use crate::platform::time::now_ms;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::{HashMap, HashSet};

pub struct DeliveryQuery {
    pub state: Option<String>,
    pub before: Option<i64>,
    pub limit: u64,
}

/// The live channel of a subscriber's deliveries (admins).
pub async fn subscriber_channel(db: &Db, caller: &Caller, id: i64) -> AppResult<String> {
    subscriber(db, caller, id).await?;
    Ok(channel(id))
}

/// A subscriber's deliveries, newest first (by the `(subscriber_id, id)` index).
pub async fn list_deliveries(db: &Db, caller: &Caller, subscriber_id: i64, q: DeliveryQuery) -> AppResult<Vec<DeliverySummary>> {
    subscriber(db, caller, subscriber_id).await?;
    let mut find = delivery::Entity::find().filter(delivery::Column::SubscriberId.eq(subscriber_id));
    if let Some(before) = q.before {
        find = find.filter(delivery::Column::Id.lt(before));
    }
    if let Some(state) = &q.state {
        let state = DeliveryState::parse(state)
            .ok_or_else(|| AppError::invalid("state", "state is one of pending, delivered, dead, skipped"))?;
        find = find.filter(delivery::Column::State.eq(state));
    }
    let rows = find.order_by_desc(delivery::Column::Id).limit(q.limit.clamp(1, 500)).all(&db.conn).await?;
    describe_deliveries(db, rows).await
}

async fn describe_deliveries(db: &Db, rows: Vec<delivery::Model>) -> AppResult<Vec<DeliverySummary>> {
    let message_ids: Vec<i64> = rows.iter().map(|d| d.message_id).collect();
    let messages: HashMap<i64, (i64, i64)> = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .column(message::Column::TopicId)
        .column(message::Column::Seq)
        .filter(message::Column::Id.is_in(message_ids))
        .into_tuple::<(i64, i64, i64)>()
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|(id, topic, seq)| (id, (topic, seq)))
        .collect();
    let topic_ids: HashSet<i64> = messages.values().map(|(t, _)| *t).collect();
    let topics: HashMap<i64, String> = topic::Entity::find()
        .filter(topic::Column::Id.is_in(topic_ids))
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    Ok(rows
        .into_iter()
        .map(|d| {
            let (topic_id, seq) = messages.get(&d.message_id).copied().unwrap_or_default();
            DeliverySummary {
                id: d.id,
                message_id: d.message_id,
                topic: topics.get(&topic_id).cloned().unwrap_or_default(),
                seq,
                next_attempt_at: (d.state == DeliveryState::Pending).then_some(d.next_attempt_at),
                state: d.state,
                attempts: d.attempts,
                last_status: d.last_status,
                last_error: d.last_error,
                created_at: d.created_at,
                finished_at: d.finished_at,
            }
        })
        .collect())
}

async fn find_delivery(db: &Db, id: i64) -> AppResult<delivery::Model> {
    delivery::Entity::find_by_id(id).one(&db.conn).await?.ok_or_else(|| AppError::not_found("delivery"))
}

pub async fn list_attempts(db: &Db, caller: &Caller, delivery_id: i64) -> AppResult<Vec<AttemptSummary>> {
    caller.require_admin()?;
    find_delivery(db, delivery_id).await?;
    Ok(attempt::Entity::find()
        .filter(attempt::Column::DeliveryId.eq(delivery_id))
        .order_by_asc(attempt::Column::Id)
        .limit(1000)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|a| AttemptSummary {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
            response_body: a.response_body,
            worker: a.worker,
        })
        .collect())
}

/// Skips a pending delivery (typically the stuck head of a blocked lane): the lane goes
/// on with the next message.
#[tracing::instrument(skip(db, caller))]
pub async fn skip_delivery(db: &Db, caller: &Caller, id: i64) -> AppResult<()> {
    caller.require_admin()?;
    db_write!(db, |txn| {
        let d = delivery::Entity::find_by_id(id).one(&*txn).await?.ok_or_else(|| AppError::not_found("delivery"))?;
        let lane = lock_lane(&*txn, d.lane_id).await?;
        let done = delivery::Entity::update_many()
            .col_expr(delivery::Column::State, Expr::value(DeliveryState::Skipped))
            .col_expr(delivery::Column::FinishedAt, Expr::value(now_ms()))
            .filter(delivery::Column::Id.eq(id))
            .filter(delivery::Column::State.eq(DeliveryState::Pending))
            .exec(&*txn)
            .await?;
        if done.rows_affected == 0 {
            return Err(AppError::conflict("not_pending", format!("the delivery is {}, not pending", d.state)));
        }
        // Never below zero: a counter that drifted heals at the next release's recount.
        let pending = (lane.pending - 1).max(0);
        reschedule_lane(&*txn, &lane, pending, false, lane.active && pending > 0).await?;
        changes::record(&*txn, &channel(d.subscriber_id), &serde_json::json!({"delivery": id, "state": DeliveryState::Skipped})).await?;
        Ok(())
    })
}

/// Retries a head from scratch, now: attempt counter reset, lane unblocked, its backoff
/// (if it was waiting one) cut short.
#[tracing::instrument(skip(db, caller))]
pub async fn retry_delivery(db: &Db, caller: &Caller, id: i64) -> AppResult<()> {
    caller.require_admin()?;
    let lane_id = find_delivery(db, id).await?.lane_id;
    db_write!(db, |txn| {
        let mut lane = lock_lane(&*txn, lane_id).await?;
        // Read under the lane's lock: what a worker did to it last is settled.
        let d = delivery::Entity::find_by_id(id).one(&*txn).await?.ok_or_else(|| AppError::not_found("delivery"))?;
        if d.state != DeliveryState::Pending {
            return Err(AppError::conflict(
                "not_pending",
                format!("the delivery is {}; replay the message to send it again", d.state),
            ));
        }
        if lane.next_due_at == Some(d.next_attempt_at) {
            // The lane waits out this head's backoff (a worker gave it back due then), which
            // `reschedule_lane` would take for a lease and keep: the retry is for now.
            lane.next_due_at = None;
        }
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Attempts, Expr::value(0))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(now_ms()))
            .filter(delivery::Column::Id.eq(id))
            .exec(&*txn)
            .await?;
        reschedule_lane(&*txn, &lane, lane.pending, false, lane.active).await?;
        changes::record(&*txn, &channel(d.subscriber_id), &serde_json::json!({"delivery": id, "state": "retry"})).await?;
        Ok(())
    })
}



/// What to send again.
pub enum Replay {
    Message(i64),
    Since(i64),
}

/// Sends the message of one delivery to its subscriber again (the log's "replay").
pub async fn replay_delivery(db: &Db, caller: &Caller, delivery_id: i64) -> AppResult<u64> {
    caller.require_admin()?;
    let d = find_delivery(db, delivery_id).await?;
    replay(db, caller, d.subscriber_id, Replay::Message(d.message_id)).await
}

/// Sends messages to one subscriber again, appended behind whatever its lanes already
/// hold (so per-lane order stays publish order of the *deliveries*). Returns how many.
#[tracing::instrument(skip(db, caller, what))]
pub async fn replay(db: &Db, caller: &Caller, subscriber_id: i64, what: Replay) -> AppResult<u64> {
    subscriber(db, caller, subscriber_id).await?;
    let subs = subscription::Entity::find()
        .filter(subscription::Column::SubscriberId.eq(subscriber_id))
        .filter(subscription::Column::State.ne(SubscriptionState::Disabled))
        .all(&db.conn)
        .await?;
    db_write!(db, |txn| {
        // The messages are read locked: a retention prune holds them the same way before it
        // looks for pending deliveries, so either it sees the deliveries added here or it
        // has deleted the messages before this reads them — never a delivery left pending
        // for a message that is gone.
        let backend = txn.get_database_backend();
        let messages = match what {
            Replay::Message(id) => {
                let m = for_update(message::Entity::find_by_id(id), backend).one(&*txn).await?.ok_or_else(|| AppError::not_found("message"))?;
                vec![m]
            }
            Replay::Since(since) => {
                let topics = topics_matching(&*txn, &subs).await?;
                let ids: Vec<i64> = message::Entity::find()
                    .select_only()
                    .column(message::Column::Id)
                    .filter(message::Column::TopicId.is_in(topics))
                    .filter(message::Column::CreatedAt.gte(since))
                    .order_by_asc(message::Column::Id)
                    .limit(REPLAY_LIMIT)
                    .into_tuple()
                    .all(&*txn)
                    .await?;
                // Locked by primary key, in id order: only these rows (a locking read that
                // sorts would lock every row it looked at), and in the order a prune takes
                // them. One pruned meanwhile is simply not there any more.
                let mut held = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(CHUNK) {
                    let find = message::Entity::find().filter(message::Column::Id.is_in(chunk.to_vec())).order_by_asc(message::Column::Id);
                    held.extend(for_update(find, backend).all(&*txn).await?);
                }
                held
            }
        };
        let now = now_ms();
        let mut total = 0;
        let mut by_topic: HashMap<i64, Vec<i64>> = HashMap::new();
        for m in &messages {
            by_topic.entry(m.topic_id).or_default().push(m.id);
        }
        for (topic_id, ids) in by_topic {
            let t = topic::Entity::find_by_id(topic_id).one(&*txn).await?.ok_or_else(|| AppError::internal_because(format!("message topic {topic_id} is missing")))?;
            let name = TopicName::parse(&t.name)?;
            let matching: Vec<subscription::Model> =
                subs.iter().filter(|s| TopicPattern::parse(&s.pattern).is_ok_and(|p| p.matches(&name))).cloned().collect();
            let Some(sub) = matching.first() else {
                if matches!(what, Replay::Message(_)) {
                    return Err(AppError::conflict("not_subscribed", "the subscriber does not subscribe to this message's topic"));
                }
                continue;
            };
            let lane = lanes_for(&*txn, topic_id, std::slice::from_ref(sub), now).await?.remove(0);
            for chunk in ids.chunks(CHUNK) {
                let rows = chunk.iter().map(|&message_id| pending_delivery(lane.id, message_id, subscriber_id, now));
                delivery::Entity::insert_many(rows).exec_without_returning(&*txn).await?;
            }
            enqueue_on_lanes(&*txn, &[lane.id], ids.len() as i64, now).await?;
            total += ids.len() as u64;
        }
        changes::record(&*txn, &channel(subscriber_id), &serde_json::json!({"replayed": total})).await?;
        Ok(total)
    })
}

// ---------------------------------------------------------------------------------------
// Retention

/// Deletes messages older than `retention` whose every delivery has finished, with their
/// deliveries and attempts (a periodic job): message payloads carry other capabilities'
/// private data, kept only while needed. Walks `broker_messages` by primary key — ids
/// grow with time, so the walk stops at the first young message — [`CHUNK`] messages per
/// transaction; messages with a pending delivery (a blocked lane) stay. Returns how many
/// messages were deleted.
#[tracing::instrument(skip(db))]
pub async fn prune(db: &Db, retention: std::time::Duration) -> AppResult<u64> {
    use sea_orm::sea_query::Query;
    let cutoff = now_ms() - retention.as_millis() as i64;
    let (mut after, mut pruned) = (0i64, 0u64);
    loop {
        let batch: Vec<(i64, i64)> = message::Entity::find()
            .select_only()
            .column(message::Column::Id)
            .column(message::Column::CreatedAt)
            .filter(message::Column::Id.gt(after))
            .order_by_asc(message::Column::Id)
            .limit(CHUNK as u64)
            .into_tuple()
            .all(&db.conn)
            .await?;
        let Some(&(last, _)) = batch.last() else { return Ok(pruned) };
        after = last;
        let old: Vec<i64> = batch.iter().take_while(|(_, at)| *at < cutoff).map(|(id, _)| *id).collect();
        let reached_young = old.len() < batch.len();
        if !old.is_empty() {
            pruned += db_write!(db, |txn| {
                // Held first, as a replay holds what it replays (see `replay`).
                let held = message::Entity::find().select_only().column(message::Column::Id).filter(message::Column::Id.is_in(old.clone()));
                for_update(held, txn.get_database_backend()).into_tuple::<i64>().all(&*txn).await?;
                let busy: HashSet<i64> = delivery::Entity::find()
                    .select_only()
                    .column(delivery::Column::MessageId)
                    .filter(delivery::Column::MessageId.is_in(old.clone()))
                    .filter(delivery::Column::State.eq(DeliveryState::Pending))
                    .into_tuple::<i64>()
                    .all(&*txn)
                    .await?
                    .into_iter()
                    .collect();
                let done: Vec<i64> = old.iter().copied().filter(|id| !busy.contains(id)).collect();
                if done.is_empty() {
                    return Ok(0);
                }
                {
                    let their_deliveries = Query::select()
                        .column(delivery::Column::Id)
                        .from(delivery::Entity)
                        .and_where(delivery::Column::MessageId.is_in(done.clone()))
                        .to_owned();
                    attempt::Entity::delete_many().filter(attempt::Column::DeliveryId.in_subquery(their_deliveries)).exec(&*txn).await?;
                    delivery::Entity::delete_many().filter(delivery::Column::MessageId.is_in(done.clone())).exec(&*txn).await?;
                    Ok(message::Entity::delete_many().filter(message::Column::Id.is_in(done)).exec(&*txn).await?.rows_affected)
                }
            })?;
        }
        if reached_young {
            return Ok(pruned);
        }
    }
}
