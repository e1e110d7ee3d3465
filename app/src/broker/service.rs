//! Broker use cases: publishing, and managing topics, subscribers and subscriptions.
//!
//! Ordering model. A *lane* is one (subscription, topic) pair; each delivery of a message
//! to a subscriber sits in exactly one lane. Publishing takes the topic row's lock, gives
//! the message the next sequence number and appends one pending delivery to every
//! matching lane — all in the caller's transaction, so a message exists together with its
//! work or not at all. Lanes are delivered head first, one request in flight per lane
//! (see `delivery`), which is what keeps publish order per (topic, subscriber).

use super::domain::*;
use super::signature::generate_secret;
use super::store::{attempt, delivery, lane, message, subscriber, subscription, topic};
use super::targets::TargetPolicy;
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::crypto::SecretBox;
use crate::platform::changes;
use crate::platform::db::{for_update, is_unique_violation, Db};
use crate::platform::time::now_ms;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

pub const STATE_ACTIVE: &str = "active";
pub const STATE_PAUSED: &str = "paused";
pub const STATE_DISABLED: &str = "disabled";
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";
pub const SKIPPED: &str = "skipped";

/// Largest payload accepted for publishing (serialized JSON).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// How long a rotated-out secret keeps signing.
pub const ROTATION_GRACE_MS: i64 = 24 * 3600 * 1000;
/// Most messages one replay-since call re-enqueues.
pub const REPLAY_LIMIT: u64 = 10_000;
/// Most rows or ids one statement carries: SQLite binds at most 32,766 values and MySQL
/// 65,535, and a statement that grows with the data is one a user can make fail.
pub const CHUNK: usize = 500;

/// Topics the app itself publishes to; created at start-up so subscribers can find them.
pub const INTERNAL_TOPICS: &[(&str, &str)] = &[("user:new", "an account was created")];

/// Live-page channel for a subscriber's deliveries.
pub fn channel(subscriber_id: i64) -> String {
    format!("broker/{subscriber_id}/")
}

// ---------------------------------------------------------------------------------------
// Publishing

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Published {
    /// The message's id; absent when no subscription matched the topic (then nothing
    /// was stored: a message nobody receives is not kept).
    pub id: Option<i64>,
    pub seq: Option<i64>,
    /// True when the idempotency key had been used: `id` is the first message's.
    pub duplicate: bool,
    /// How many subscriptions it was queued for.
    pub subscriptions: u64,
}

impl Published {
    fn unsent() -> Self {
        Self { id: None, seq: None, duplicate: false, subscriptions: 0 }
    }
}

/// Publishes `payload` on `topic` inside `conn` (pass the business write's transaction).
/// With an idempotency key, publishing the same key twice returns the first message and
/// delivers once. When no subscription matches, nothing is stored — the app publishes
/// private data (chat texts, event details, invitees), which is kept only for as long as
/// someone is to receive it — and no lock is taken.
#[tracing::instrument(skip(conn, payload), fields(topic = %topic))]
pub async fn publish<C: ConnectionTrait>(
    conn: &C,
    topic: &TopicName,
    payload: &serde_json::Value,
    idempotency_key: Option<&str>,
    published_by: Option<i64>,
) -> AppResult<Published> {
    let backend = conn.get_database_backend();
    let body = serde_json::to_string(payload).map_err(|_| AppError::invalid("payload", "payload is not serializable"))?;
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(AppError::invalid("payload", format!("payload exceeds {MAX_PAYLOAD_BYTES} bytes")));
    }
    if let Some(key) = idempotency_key {
        if key.is_empty() || key.len() > 191 {
            return Err(AppError::invalid("idempotency_key", "idempotency_key must be 1 to 191 characters"));
        }
    }
    if matching_subscriptions(conn, topic).await?.is_empty() {
        topic::Entity::find().filter(topic::Column::Name.eq(topic.as_str())).one(conn).await?.ok_or_else(|| AppError::not_found("topic"))?;
        return Ok(Published::unsent());
    }
    // The topic row lock serialises publishers of one topic: sequence numbers, message ids
    // and delivery ids all follow commit order.
    let topic_row = for_update(topic::Entity::find().filter(topic::Column::Name.eq(topic.as_str())), backend)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("topic"))?;
    if let Some(key) = idempotency_key {
        let existing = message::Entity::find()
            .filter(message::Column::TopicId.eq(topic_row.id))
            .filter(message::Column::IdempotencyKey.eq(key))
            .one(conn)
            .await?;
        if let Some(m) = existing {
            return Ok(Published { id: Some(m.id), seq: Some(m.seq), duplicate: true, subscriptions: 0 });
        }
    }
    // Read again under the lock: what this message is queued for follows commit order.
    let subs = matching_subscriptions(conn, topic).await?;
    if subs.is_empty() {
        return Ok(Published::unsent());
    }
    let seq = topic_row.last_seq + 1;
    topic::Entity::update_many()
        .col_expr(topic::Column::LastSeq, Expr::value(seq))
        .filter(topic::Column::Id.eq(topic_row.id))
        .exec(conn)
        .await?;
    let now = now_ms();
    let msg = message::ActiveModel {
        topic_id: Set(topic_row.id),
        seq: Set(seq),
        payload: Set(body),
        idempotency_key: Set(idempotency_key.map(str::to_owned)),
        published_by: Set(published_by),
        created_at: Set(now),
        ..Default::default()
    };
    let message_id = message::Entity::insert(msg).exec(conn).await?.last_insert_id;
    fan_out(conn, &topic_row, &subs, message_id, now).await?;
    metrics::counter!("broker_published_total").increment(1);
    Ok(Published { id: Some(message_id), seq: Some(seq), duplicate: false, subscriptions: subs.len() as u64 })
}

/// Publishes for a caller of the REST API or the admin page: admins on any topic,
/// members where the topic lets them.
#[tracing::instrument(skip(db, caller, payload), fields(caller = %caller.username()))]
pub async fn publish_as(db: &Db, caller: &Caller, topic: &str, payload: &serde_json::Value, idempotency_key: Option<&str>) -> AppResult<Published> {
    let t = find_topic(db, topic).await?;
    if !caller.is_admin() && !t.members_may_publish {
        return Err(AppError::forbidden("only admins may publish to this topic"));
    }
    let name = TopicName::parse(&t.name)?;
    db.retrying(|| async {
        let txn = db.write_txn().await?;
        let published = publish(&*txn, &name, payload, idempotency_key, Some(caller.id())).await?;
        txn.commit().await?;
        Ok(published)
    })
    .await
}

/// The one-line API for the app's own producers: publish `payload` on `topic` (created
/// if missing) in the caller's transaction.
pub async fn publish_event<C: ConnectionTrait>(conn: &C, topic: &str, payload: &impl Serialize) -> AppResult<Option<i64>> {
    let name = TopicName::parse(topic).map_err(|_| AppError::internal_because(format!("internal producer used the invalid topic name {topic:?}")))?;
    ensure_topic(conn, &name, "").await?;
    let payload = serde_json::to_value(payload).map_err(AppError::internal_because)?;
    Ok(publish(conn, &name, &payload, None, None).await?.id)
}

/// The subscriptions (not disabled) whose pattern matches `topic`.
async fn matching_subscriptions<C: ConnectionTrait>(conn: &C, topic: &TopicName) -> AppResult<Vec<subscription::Model>> {
    Ok(subscription::Entity::find()
        .filter(subscription::Column::Pattern.is_in(topic.matching_patterns()))
        .filter(subscription::Column::State.ne(STATE_DISABLED))
        .all(conn)
        .await?)
}

/// A delivery of `message_id` on a lane, due now: how publishing and replay both start one.
fn pending_delivery(lane_id: i64, message_id: i64, subscriber_id: i64, now: i64) -> delivery::ActiveModel {
    delivery::ActiveModel {
        lane_id: Set(lane_id),
        message_id: Set(message_id),
        subscriber_id: Set(subscriber_id),
        state: Set(PENDING.into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_status: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
        ..Default::default()
    }
}

/// Appends one pending delivery of `message_id` to the lane of every subscription in
/// `subs`. A handful of statements per [`CHUNK`] subscriptions.
async fn fan_out<C: ConnectionTrait>(conn: &C, topic_row: &topic::Model, subs: &[subscription::Model], message_id: i64, now: i64) -> AppResult<()> {
    for subs in subs.chunks(CHUNK) {
        let lanes = lanes_for(conn, topic_row.id, subs, now).await?;
        let rows = lanes.iter().map(|l| pending_delivery(l.id, message_id, l.subscriber_id, now));
        delivery::Entity::insert_many(rows).exec_without_returning(conn).await?;
        let ids: Vec<i64> = lanes.iter().map(|l| l.id).collect();
        enqueue_on_lanes(conn, &ids, 1, now).await?;
    }
    Ok(())
}

/// The lanes of `subs` for one topic, created where missing, locked for this transaction.
async fn lanes_for<C: ConnectionTrait>(conn: &C, topic_id: i64, subs: &[subscription::Model], now: i64) -> AppResult<Vec<lane::Model>> {
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
async fn ensure_lanes<C: ConnectionTrait>(conn: &C, topic_id: i64, subs: &[subscription::Model], now: i64) -> AppResult<()> {
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
                active: Set(s.state == STATE_ACTIVE),
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
async fn enqueue_on_lanes<C: ConnectionTrait>(conn: &C, lane_ids: &[i64], added: i64, now: i64) -> AppResult<()> {
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

// ---------------------------------------------------------------------------------------
// Topics

pub async fn ensure_topic<C: ConnectionTrait>(conn: &C, name: &TopicName, description: &str) -> AppResult<topic::Model> {
    if let Some(t) = topic::Entity::find().filter(topic::Column::Name.eq(name.as_str())).one(conn).await? {
        return Ok(t);
    }
    match insert_topic(conn, name, description, false).await {
        Err(e) if e.status == 409 => Ok(topic::Entity::find()
            .filter(topic::Column::Name.eq(name.as_str()))
            .one(conn)
            .await?
            .ok_or_else(AppError::internal)?),
        other => other,
    }
}

async fn insert_topic<C: ConnectionTrait>(conn: &C, name: &TopicName, description: &str, members_may_publish: bool) -> AppResult<topic::Model> {
    if description.chars().count() > 500 {
        return Err(AppError::invalid("description", "description must be at most 500 characters"));
    }
    let row = topic::ActiveModel {
        name: Set(name.to_string()),
        description: Set(description.to_owned()),
        members_may_publish: Set(members_may_publish),
        last_seq: Set(0),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    match topic::Entity::insert(row).exec_with_returning(conn).await {
        Ok(t) => {
            let subs = subscription::Entity::find()
                .filter(subscription::Column::Pattern.is_in(name.matching_patterns()))
                .all(conn)
                .await?;
            ensure_lanes(conn, t.id, &subs, now_ms()).await?;
            Ok(t)
        }
        Err(e) if is_unique_violation(&e) => Err(AppError::conflict("topic_exists", "a topic with that name exists").on_field("name")),
        Err(e) => Err(e.into()),
    }
}

#[tracing::instrument(skip(db, caller))]
pub async fn create_topic(db: &Db, caller: &Caller, name: &str, description: &str, members_may_publish: bool) -> AppResult<topic::Model> {
    caller.require_admin()?;
    insert_topic(&db.conn, &TopicName::parse(name)?, description, members_may_publish).await
}

pub async fn seed_internal_topics(db: &Db) -> AppResult<()> {
    for (name, description) in INTERNAL_TOPICS {
        ensure_topic(&db.conn, &TopicName::parse(name)?, description).await?;
    }
    Ok(())
}

/// One topic (any signed-in member may look).
pub async fn topic_for(db: &Db, _caller: &Caller, name: &str) -> AppResult<topic::Model> {
    find_topic(db, name).await
}

async fn find_topic(db: &Db, name: &str) -> AppResult<topic::Model> {
    let name = TopicName::parse(name).map_err(|_| AppError::not_found("topic"))?;
    topic::Entity::find()
        .filter(topic::Column::Name.eq(name.as_str()))
        .one(&db.conn)
        .await?
        .ok_or_else(|| AppError::not_found("topic"))
}

pub fn topic_summary(t: topic::Model) -> TopicSummary {
    TopicSummary { id: t.id, name: t.name, description: t.description, members_may_publish: t.members_may_publish, messages: t.last_seq }
}

/// All topics, by name. (Topics are a short list an admin curates.)
pub async fn list_topics(db: &Db, _caller: &Caller) -> AppResult<Vec<TopicSummary>> {
    Ok(topic::Entity::find().order_by_asc(topic::Column::Name).limit(1000).all(&db.conn).await?.into_iter().map(topic_summary).collect())
}

pub async fn update_topic(db: &Db, caller: &Caller, name: &str, description: Option<&str>, members_may_publish: Option<bool>) -> AppResult<topic::Model> {
    caller.require_admin()?;
    let t = find_topic(db, name).await?;
    if description.is_some_and(|d| d.chars().count() > 500) {
        return Err(AppError::invalid("description", "description must be at most 500 characters"));
    }
    let mut row: topic::ActiveModel = t.into();
    if let Some(d) = description {
        row.description = Set(d.to_owned());
    }
    if let Some(m) = members_may_publish {
        row.members_may_publish = Set(m);
    }
    Ok(topic::Entity::update(row).exec(&db.conn).await?)
}

/// Deletes a topic that never carried a message (history stays intact).
pub async fn delete_topic(db: &Db, caller: &Caller, name: &str) -> AppResult<()> {
    caller.require_admin()?;
    let t = find_topic(db, name).await?;
    if t.last_seq > 0 {
        return Err(AppError::conflict("topic_has_messages", "a topic that carried messages cannot be deleted"));
    }
    topic::Entity::delete_by_id(t.id).exec(&db.conn).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Subscribers

fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::invalid("name", "name must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

/// What a sealed signing secret is bound to (see `platform::crypto`).
const SECRET_CONTEXT: &str = "broker_subscribers.secret";

/// Creates a subscriber; returns it with its signing secret in clear (shown to the caller
/// once; the database keeps it sealed).
#[tracing::instrument(skip(db, sealer, caller, policy))]
pub async fn create_subscriber(db: &Db, sealer: &SecretBox, caller: &Caller, policy: &TargetPolicy, name: &str, url: &str) -> AppResult<(subscriber::Model, String)> {
    caller.require_admin()?;
    let name = check_name(name)?;
    let url = policy.check_url(url, "url")?;
    let secret = generate_secret();
    let row = subscriber::ActiveModel {
        name: Set(name),
        url: Set(url.to_string()),
        secret: Set(sealer.seal(SECRET_CONTEXT, &secret)),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    Ok((subscriber::Entity::insert(row).exec_with_returning(&db.conn).await?, secret))
}

/// One subscriber, for admins.
pub async fn subscriber(db: &Db, caller: &Caller, id: i64) -> AppResult<subscriber::Model> {
    caller.require_admin()?;
    find_subscriber(db, id).await
}

async fn find_subscriber(db: &Db, id: i64) -> AppResult<subscriber::Model> {
    subscriber::Entity::find_by_id(id).one(&db.conn).await?.ok_or_else(|| AppError::not_found("subscriber"))
}

pub fn subscriber_summary(s: &subscriber::Model) -> SubscriberSummary {
    SubscriberSummary { id: s.id, name: s.name.clone(), url: s.url.clone(), created_at: s.created_at }
}

pub async fn list_subscribers(db: &Db, caller: &Caller) -> AppResult<Vec<subscriber::Model>> {
    caller.require_admin()?;
    Ok(subscriber::Entity::find().order_by_asc(subscriber::Column::Id).limit(1000).all(&db.conn).await?)
}

pub async fn update_subscriber(db: &Db, caller: &Caller, policy: &TargetPolicy, id: i64, name: Option<&str>, url: Option<&str>) -> AppResult<subscriber::Model> {
    let mut row: subscriber::ActiveModel = subscriber(db, caller, id).await?.into();
    if let Some(n) = name {
        row.name = Set(check_name(n)?);
    }
    if let Some(u) = url {
        row.url = Set(policy.check_url(u, "url")?.to_string());
    }
    Ok(subscriber::Entity::update(row).exec(&db.conn).await?)
}

/// A stored secret in clear. Values from before secrets were sealed are still clear
/// text until [`seal_legacy_secrets`] has run.
fn open_secret(sealer: &SecretBox, stored: &str) -> AppResult<String> {
    if !SecretBox::is_sealed(stored) {
        return Ok(stored.to_owned());
    }
    sealer.open(SECRET_CONTEXT, stored).map_err(|e| {
        AppError::internal_because(format!("a subscriber's signing secret cannot be opened ({e}); was SB_SECRET_KEY changed?"))
    })
}

/// The secrets a delivery is signed with now: the current one, and the previous one
/// during its grace period after a rotation.
pub(super) fn signing_secrets(sealer: &SecretBox, s: &subscriber::Model, now: i64) -> AppResult<Vec<String>> {
    let mut secrets = vec![open_secret(sealer, &s.secret)?];
    if let (Some(prev), Some(until)) = (&s.previous_secret, s.previous_secret_until) {
        if until > now {
            secrets.push(open_secret(sealer, prev)?);
        }
    }
    Ok(secrets)
}

/// A subscriber's signing secret as its admin sees it.
pub struct SecretInfo {
    pub secret: String,
    /// Until when the previous secret also signs (after a rotation).
    pub previous_valid_until: Option<i64>,
}

/// Reveals a subscriber's signing secret (admins).
pub async fn reveal_secret(db: &Db, sealer: &SecretBox, caller: &Caller, id: i64) -> AppResult<SecretInfo> {
    let s = subscriber(db, caller, id).await?;
    Ok(SecretInfo {
        secret: open_secret(sealer, &s.secret)?,
        previous_valid_until: s.previous_secret_until.filter(|t| *t > now_ms()),
    })
}

/// Seals signing secrets stored in clear by earlier versions; run at start-up. The
/// subscriber list is short (an admin curates it), read a page at a time.
pub async fn seal_legacy_secrets(db: &Db, sealer: &SecretBox) -> AppResult<u64> {
    let mut sealed = 0;
    let mut after = 0;
    loop {
        let page = subscriber::Entity::find().filter(subscriber::Column::Id.gt(after)).order_by_asc(subscriber::Column::Id).limit(CHUNK as u64).all(&db.conn).await?;
        let Some(last) = page.last() else { return Ok(sealed) };
        after = last.id;
        for s in page.into_iter().filter(|s| !SecretBox::is_sealed(&s.secret) || s.previous_secret.as_deref().is_some_and(|p| !SecretBox::is_sealed(p))) {
            let seal = |v: &str| if SecretBox::is_sealed(v) { v.to_owned() } else { sealer.seal(SECRET_CONTEXT, v) };
            subscriber::Entity::update_many()
                .col_expr(subscriber::Column::Secret, Expr::value(seal(&s.secret)))
                .col_expr(subscriber::Column::PreviousSecret, Expr::value(s.previous_secret.as_deref().map(seal)))
                .filter(subscriber::Column::Id.eq(s.id))
                .filter(subscriber::Column::Secret.eq(s.secret.clone()))
                .exec(&db.conn)
                .await?;
            sealed += 1;
        }
    }
}

/// Deletes a subscriber with its subscriptions, lanes and delivery log (a chunk of
/// deliveries at a time, so no statement grows with the log).
pub async fn delete_subscriber(db: &Db, caller: &Caller, id: i64) -> AppResult<()> {
    subscriber(db, caller, id).await?;
    let txn = db.write_txn().await?;
    loop {
        let deliveries: Vec<i64> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::SubscriberId.eq(id))
            .limit(CHUNK as u64)
            .into_tuple()
            .all(&*txn)
            .await?;
        if deliveries.is_empty() {
            break;
        }
        attempt::Entity::delete_many().filter(attempt::Column::DeliveryId.is_in(deliveries.clone())).exec(&*txn).await?;
        delivery::Entity::delete_many().filter(delivery::Column::Id.is_in(deliveries)).exec(&*txn).await?;
    }
    lane::Entity::delete_many().filter(lane::Column::SubscriberId.eq(id)).exec(&*txn).await?;
    subscription::Entity::delete_many().filter(subscription::Column::SubscriberId.eq(id)).exec(&*txn).await?;
    subscriber::Entity::delete_by_id(id).exec(&*txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Issues a new secret; the previous one keeps signing for 24 h so receivers can switch.
#[tracing::instrument(skip(db, sealer, caller))]
pub async fn rotate_secret(db: &Db, sealer: &SecretBox, caller: &Caller, id: i64) -> AppResult<SecretInfo> {
    let current = subscriber(db, caller, id).await?;
    let secret = generate_secret();
    let until = now_ms() + ROTATION_GRACE_MS;
    let previous = sealer.seal(SECRET_CONTEXT, &open_secret(sealer, &current.secret)?);
    let mut row: subscriber::ActiveModel = current.into();
    row.previous_secret = Set(Some(previous));
    row.previous_secret_until = Set(Some(until));
    row.secret = Set(sealer.seal(SECRET_CONTEXT, &secret));
    subscriber::Entity::update(row).exec(&db.conn).await?;
    Ok(SecretInfo { secret, previous_valid_until: Some(until) })
}

// ---------------------------------------------------------------------------------------
// Subscriptions

pub struct SubscriptionOptions {
    pub policy: Option<FailurePolicy>,
    pub max_attempts: Option<i32>,
    pub retry_base_ms: Option<i64>,
    pub retry_max_ms: Option<i64>,
}

fn check_options(o: &SubscriptionOptions) -> AppResult<()> {
    if o.max_attempts.is_some_and(|n| !(1..=1000).contains(&n)) {
        return Err(AppError::invalid("max_attempts", "max_attempts must be 1 to 1000"));
    }
    if o.retry_base_ms.is_some_and(|n| !(1..=86_400_000).contains(&n)) {
        return Err(AppError::invalid("retry_base_ms", "retry_base_ms must be 1 ms to 24 h"));
    }
    if o.retry_max_ms.is_some_and(|n| !(1..=7 * 86_400_000).contains(&n)) {
        return Err(AppError::invalid("retry_max_ms", "retry_max_ms must be 1 ms to 7 days"));
    }
    Ok(())
}

#[tracing::instrument(skip(db, caller, options))]
pub async fn subscribe(db: &Db, caller: &Caller, subscriber_id: i64, pattern: &str, options: SubscriptionOptions, default_max_attempts: i32) -> AppResult<subscription::Model> {
    subscriber(db, caller, subscriber_id).await?;
    let pattern = TopicPattern::parse(pattern)?;
    check_options(&options)?;
    let txn = db.write_txn().await?;
    let existing = subscription::Entity::find().filter(subscription::Column::SubscriberId.eq(subscriber_id)).all(&*txn).await?;
    if let Some(clash) = existing.iter().find(|s| TopicPattern::parse(&s.pattern).is_ok_and(|p| p.overlaps(&pattern))) {
        return Err(AppError::conflict(
            "subscription_overlaps",
            format!("this subscriber already receives these topics through {:?}", clash.pattern),
        )
        .on_field("topic"));
    }
    let row = subscription::ActiveModel {
        subscriber_id: Set(subscriber_id),
        pattern: Set(pattern.as_str().to_owned()),
        state: Set(STATE_ACTIVE.into()),
        policy: Set(options.policy.unwrap_or(FailurePolicy::Block).as_str().into()),
        max_attempts: Set(options.max_attempts.unwrap_or(default_max_attempts)),
        retry_base_ms: Set(options.retry_base_ms),
        retry_max_ms: Set(options.retry_max_ms),
        disabled_reason: Set(None),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    let created = subscription::Entity::insert(row).exec_with_returning(&*txn).await?;
    for topic_id in topics_matching(&*txn, std::slice::from_ref(&created)).await? {
        ensure_lanes(&*txn, topic_id, std::slice::from_ref(&created), now_ms()).await?;
    }
    txn.commit().await?;
    Ok(created)
}

async fn find_subscription(db: &Db, id: i64) -> AppResult<subscription::Model> {
    subscription::Entity::find_by_id(id).one(&db.conn).await?.ok_or_else(|| AppError::not_found("subscription"))
}

pub async fn update_subscription(db: &Db, caller: &Caller, id: i64, options: SubscriptionOptions) -> AppResult<subscription::Model> {
    caller.require_admin()?;
    check_options(&options)?;
    let mut row: subscription::ActiveModel = find_subscription(db, id).await?.into();
    if let Some(p) = options.policy {
        row.policy = Set(p.as_str().into());
    }
    if let Some(n) = options.max_attempts {
        row.max_attempts = Set(n);
    }
    if options.retry_base_ms.is_some() {
        row.retry_base_ms = Set(options.retry_base_ms);
    }
    if options.retry_max_ms.is_some() {
        row.retry_max_ms = Set(options.retry_max_ms);
    }
    Ok(subscription::Entity::update(row).exec(&db.conn).await?)
}

/// One subscription with its lag and blocked state (admins).
pub async fn subscription_summary(db: &Db, caller: &Caller, id: i64) -> AppResult<SubscriptionSummary> {
    caller.require_admin()?;
    let sub = find_subscription(db, id).await?;
    summaries(db, sub.subscriber_id).await?.into_iter().find(|s| s.id == id).ok_or_else(|| AppError::not_found("subscription"))
}

/// Subscriptions of a subscriber with their lag (messages waiting) and blocked state.
pub async fn list_subscriptions(db: &Db, caller: &Caller, subscriber_id: i64) -> AppResult<Vec<SubscriptionSummary>> {
    subscriber(db, caller, subscriber_id).await?;
    summaries(db, subscriber_id).await
}

async fn summaries(db: &Db, subscriber_id: i64) -> AppResult<Vec<SubscriptionSummary>> {
    let subs = subscription::Entity::find()
        .filter(subscription::Column::SubscriberId.eq(subscriber_id))
        .order_by_asc(subscription::Column::Id)
        .all(&db.conn)
        .await?;
    let lanes = lane::Entity::find().filter(lane::Column::SubscriberId.eq(subscriber_id)).all(&db.conn).await?;
    Ok(subs
        .into_iter()
        .map(|s| {
            let mine = lanes.iter().filter(|l| l.subscription_id == s.id);
            let (lag, blocked) = mine.fold((0, false), |(n, b), l| (n + l.pending, b || l.blocked));
            SubscriptionSummary {
                id: s.id,
                subscriber_id: s.subscriber_id,
                topic: s.pattern,
                state: s.state,
                policy: s.policy,
                max_attempts: s.max_attempts,
                disabled_reason: s.disabled_reason,
                lag,
                blocked,
            }
        })
        .collect())
}

/// Pauses (nothing is delivered, messages keep queueing) or resumes a subscription.
/// Resuming also re-enables one the broker disabled after a 410.
#[tracing::instrument(skip(db, caller))]
pub async fn set_paused(db: &Db, caller: &Caller, id: i64, paused: bool) -> AppResult<subscription::Model> {
    caller.require_admin()?;
    let sub = find_subscription(db, id).await?;
    let txn = db.write_txn().await?;
    let state = if paused { STATE_PAUSED } else { STATE_ACTIVE };
    subscription::Entity::update_many()
        .col_expr(subscription::Column::State, Expr::value(state))
        .col_expr(subscription::Column::DisabledReason, Expr::value(Option::<String>::None))
        .filter(subscription::Column::Id.eq(id))
        .exec(&*txn)
        .await?;
    set_lanes_active(&*txn, id, !paused).await?;
    changes::record(&*txn, &channel(sub.subscriber_id), &serde_json::json!({"subscription": id, "state": state})).await?;
    txn.commit().await?;
    find_subscription(db, id).await
}

/// Marks every lane of a subscription active or not. Activation schedules the idle lanes
/// that have work; deactivation unschedules them (a lane being delivered right now ends
/// its current request, then its worker sees the lane inactive and stops).
pub(super) async fn set_lanes_active<C: ConnectionTrait>(conn: &C, subscription_id: i64, active: bool) -> AppResult<()> {
    let now = now_ms();
    let next = if active {
        Expr::case(
            Expr::col(lane::Column::Pending).gt(0).and(Expr::col(lane::Column::Blocked).eq(false)),
            Expr::col(lane::Column::NextDueAt).if_null(now),
        )
        .finally(Expr::col(lane::Column::NextDueAt))
        .into()
    } else {
        Expr::value(Option::<i64>::None)
    };
    lane::Entity::update_many()
        .col_expr(lane::Column::Active, Expr::value(active))
        .col_expr(lane::Column::NextDueAt, next)
        .filter(lane::Column::SubscriptionId.eq(subscription_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Deletes a subscription; messages already delivered stay in the subscriber's log,
/// pending ones are dropped.
pub async fn unsubscribe(db: &Db, caller: &Caller, id: i64) -> AppResult<()> {
    caller.require_admin()?;
    let sub = find_subscription(db, id).await?;
    let txn = db.write_txn().await?;
    let lane_ids: Vec<i64> = lane::Entity::find()
        .select_only()
        .column(lane::Column::Id)
        .filter(lane::Column::SubscriptionId.eq(id))
        .into_tuple()
        .all(&*txn)
        .await?;
    for lanes in lane_ids.chunks(CHUNK) {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::State, Expr::value(SKIPPED))
            .col_expr(delivery::Column::FinishedAt, Expr::value(now_ms()))
            .col_expr(delivery::Column::LastError, Expr::value("subscription deleted"))
            .filter(delivery::Column::LaneId.is_in(lanes.to_vec()))
            .filter(delivery::Column::State.eq(PENDING))
            .exec(&*txn)
            .await?;
        lane::Entity::delete_many().filter(lane::Column::Id.is_in(lanes.to_vec())).exec(&*txn).await?;
    }
    subscription::Entity::delete_by_id(sub.id).exec(&*txn).await?;
    txn.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Delivery log, skip, retry, replay

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
        if ![PENDING, DELIVERED, DEAD, SKIPPED].contains(&state.as_str()) {
            return Err(AppError::invalid("state", "state is one of pending, delivered, dead, skipped"));
        }
        find = find.filter(delivery::Column::State.eq(state.as_str()));
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
                next_attempt_at: (d.state == PENDING).then_some(d.next_attempt_at),
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
    let txn = db.write_txn().await?;
    let d = delivery::Entity::find_by_id(id).one(&*txn).await?.ok_or_else(|| AppError::not_found("delivery"))?;
    let lane = lock_lane(&*txn, d.lane_id).await?;
    let done = delivery::Entity::update_many()
        .col_expr(delivery::Column::State, Expr::value(SKIPPED))
        .col_expr(delivery::Column::FinishedAt, Expr::value(now_ms()))
        .filter(delivery::Column::Id.eq(id))
        .filter(delivery::Column::State.eq(PENDING))
        .exec(&*txn)
        .await?;
    if done.rows_affected == 0 {
        return Err(AppError::conflict("not_pending", format!("the delivery is {}, not pending", d.state)));
    }
    let pending = lane.pending - 1;
    reschedule_lane(&*txn, &lane, pending, false, lane.active && pending > 0).await?;
    changes::record(&*txn, &channel(d.subscriber_id), &serde_json::json!({"delivery": id, "state": SKIPPED})).await?;
    txn.commit().await?;
    Ok(())
}

/// Retries a blocked head from scratch (attempt counter reset, lane unblocked).
#[tracing::instrument(skip(db, caller))]
pub async fn retry_delivery(db: &Db, caller: &Caller, id: i64) -> AppResult<()> {
    caller.require_admin()?;
    let txn = db.write_txn().await?;
    let d = delivery::Entity::find_by_id(id).one(&*txn).await?.ok_or_else(|| AppError::not_found("delivery"))?;
    if d.state != PENDING {
        return Err(AppError::conflict(
            "not_pending",
            format!("the delivery is {}; replay the message to send it again", d.state),
        ));
    }
    let lane = lock_lane(&*txn, d.lane_id).await?;
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Attempts, Expr::value(0))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(now_ms()))
        .filter(delivery::Column::Id.eq(id))
        .exec(&*txn)
        .await?;
    reschedule_lane(&*txn, &lane, lane.pending, false, lane.active).await?;
    changes::record(&*txn, &channel(d.subscriber_id), &serde_json::json!({"delivery": id, "state": "retry"})).await?;
    txn.commit().await?;
    Ok(())
}

pub(super) async fn lock_lane<C: ConnectionTrait>(conn: &C, id: i64) -> AppResult<lane::Model> {
    for_update(lane::Entity::find_by_id(id), conn.get_database_backend())
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("lane"))
}

/// Writes a lane's pending count and block flag; schedules it now when `due`, else idles
/// it — unless a worker holds it (due in the future), whose lease must not be cut short.
async fn reschedule_lane<C: ConnectionTrait>(conn: &C, lane: &lane::Model, pending: i64, blocked: bool, due: bool) -> AppResult<()> {
    let now = now_ms();
    let leased = lane.next_due_at.is_some_and(|t| t > now);
    let next = match (leased, due) {
        (true, _) => lane.next_due_at,
        (false, true) => Some(now),
        (false, false) => None,
    };
    lane::Entity::update_many()
        .col_expr(lane::Column::Pending, Expr::value(pending))
        .col_expr(lane::Column::Blocked, Expr::value(blocked))
        .col_expr(lane::Column::NextDueAt, Expr::value(next))
        .filter(lane::Column::Id.eq(lane.id))
        .exec(conn)
        .await?;
    Ok(())
}

/// What to send again.
pub enum Replay {
    Message(i64),
    Since(i64),
}

/// Sends messages to one subscriber again, appended behind whatever its lanes already
/// hold (so per-lane order stays publish order of the *deliveries*). Returns how many.
/// Sends the message of one delivery to its subscriber again (the log's "replay").
pub async fn replay_delivery(db: &Db, caller: &Caller, delivery_id: i64) -> AppResult<u64> {
    caller.require_admin()?;
    let d = find_delivery(db, delivery_id).await?;
    replay(db, caller, d.subscriber_id, Replay::Message(d.message_id)).await
}

#[tracing::instrument(skip(db, caller, what))]
pub async fn replay(db: &Db, caller: &Caller, subscriber_id: i64, what: Replay) -> AppResult<u64> {
    subscriber(db, caller, subscriber_id).await?;
    let subs = subscription::Entity::find()
        .filter(subscription::Column::SubscriberId.eq(subscriber_id))
        .filter(subscription::Column::State.ne(STATE_DISABLED))
        .all(&db.conn)
        .await?;
    let txn = db.write_txn().await?;
    let messages = match what {
        Replay::Message(id) => {
            let m = message::Entity::find_by_id(id).one(&*txn).await?.ok_or_else(|| AppError::not_found("message"))?;
            vec![m]
        }
        Replay::Since(since) => {
            let topics = topics_matching(&*txn, &subs).await?;
            message::Entity::find()
                .filter(message::Column::TopicId.is_in(topics))
                .filter(message::Column::CreatedAt.gte(since))
                .order_by_asc(message::Column::Id)
                .limit(REPLAY_LIMIT)
                .all(&*txn)
                .await?
        }
    };
    let now = now_ms();
    let mut total = 0;
    let mut by_topic: HashMap<i64, Vec<i64>> = HashMap::new();
    for m in &messages {
        by_topic.entry(m.topic_id).or_default().push(m.id);
    }
    for (topic_id, ids) in by_topic {
        let t = topic::Entity::find_by_id(topic_id).one(&*txn).await?.ok_or_else(AppError::internal)?;
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
    txn.commit().await?;
    Ok(total)
}

/// Ids of the topics a set of subscriptions covers (wildcards expanded over the topic list).
async fn topics_matching<C: ConnectionTrait>(conn: &C, subs: &[subscription::Model]) -> AppResult<Vec<i64>> {
    let patterns: Vec<TopicPattern> = subs.iter().filter_map(|s| TopicPattern::parse(&s.pattern).ok()).collect();
    Ok(topic::Entity::find()
        .limit(1000)
        .all(conn)
        .await?
        .into_iter()
        .filter(|t| TopicName::parse(&t.name).is_ok_and(|n| patterns.iter().any(|p| p.matches(&n))))
        .map(|t| t.id)
        .collect())
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
            let txn = db.write_txn().await?;
            let busy: HashSet<i64> = delivery::Entity::find()
                .select_only()
                .column(delivery::Column::MessageId)
                .filter(delivery::Column::MessageId.is_in(old.clone()))
                .filter(delivery::Column::State.eq(PENDING))
                .into_tuple::<i64>()
                .all(&*txn)
                .await?
                .into_iter()
                .collect();
            let done: Vec<i64> = old.into_iter().filter(|id| !busy.contains(id)).collect();
            if !done.is_empty() {
                let their_deliveries = Query::select()
                    .column(delivery::Column::Id)
                    .from(delivery::Entity)
                    .and_where(delivery::Column::MessageId.is_in(done.clone()))
                    .to_owned();
                attempt::Entity::delete_many().filter(attempt::Column::DeliveryId.in_subquery(their_deliveries)).exec(&*txn).await?;
                delivery::Entity::delete_many().filter(delivery::Column::MessageId.is_in(done.clone())).exec(&*txn).await?;
                pruned += message::Entity::delete_many().filter(message::Column::Id.is_in(done)).exec(&*txn).await?.rows_affected;
            }
            txn.commit().await?;
        }
        if reached_young {
            return Ok(pruned);
        }
    }
}
