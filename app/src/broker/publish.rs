//! Publishing and sequencing.
//!
//! A publish is one insert into `broker_outbox`, made in the producer's own transaction:
//! it takes no lock on anything shared, so producers of one topic never queue behind each
//! other (before, every chat post in the installation waited on the `chat:message` topic
//! row for five round trips).
//!
//! The [`Sequencer`] (one per process, any number of processes) moves committed outbox
//! rows into `broker_messages`, keeping their ids, a few hundred per transaction. Under
//! the topic row's lock it gives them the topic's next sequence numbers in id order and
//! appends one pending delivery per message to every matching lane. Only sequencers take
//! that lock, with `SKIP LOCKED`: it is the per-topic mutex across processes, held for one
//! batch — a fence that cannot expire under a stalled worker the way a timed lease can —
//! so two processes never both number one topic. A message thus takes its place in the
//! topic's order when it becomes visible: one published after another's publish returned
//! always comes after it. A crash mid-batch rolls the batch back; its rows wait in the
//! outbox for the next run.

use crate::db_write;
use super::domain::{DeliveryState, SubscriptionState};
use super::domain::*;
use super::service::{CHUNK, MAX_PAYLOAD_BYTES};
use super::store::{self, delivery, message, outbox, subscription, topic};
use crate::accounts::Caller;
use crate::error::{AppError, AppResult, DB_CONFLICT};
use crate::platform::db::{insert_ids, is_unique_violation, skip_locked, Db, WriteTxn};
use crate::platform::group_commit::{Batch, GroupCommit};
use crate::platform::state::AppState;
use futures::future::BoxFuture;
use crate::platform::events::EventOutlet;
use crate::platform::time::now_ms;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::sync::watch;

/// The sequencer's in-process wake-up: fired when a transaction that published commits.
pub const SEQUENCER_WAKER: &str = "broker.sequencer";
/// The dispatcher's: fired when a sequencer batch (new deliveries) commits.
pub const DISPATCHER_WAKER: &str = "broker.dispatcher";
/// Outbox rows one sequencer transaction takes per topic.
const SEQUENCE_BATCH: u64 = 500;
/// How often a sequencer looks for work nobody woke it for: rows left by a process that
/// died, or published by a process whose own sequencer found the topic busy.
const SEQUENCER_POLL: Duration = Duration::from_millis(200);

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Published {
    /// The message's id (its deliveries carry `webhook-id: msg_{id}`); absent when no
    /// subscription matched the topic (then nothing was stored: a message nobody
    /// receives is not kept).
    pub id: Option<i64>,
    /// Its place in the topic's order. Given when the message is sequenced, a moment
    /// after the publish is answered, so known here only for a duplicate.
    pub seq: Option<i64>,
    /// True when the idempotency key had been used: `id` is the first message's.
    pub duplicate: bool,
    /// How many subscriptions matched the topic when it was published.
    pub subscriptions: u64,
}

impl Published {
    fn unsent() -> Self {
        Self { id: None, seq: None, duplicate: false, subscriptions: 0 }
    }

    /// A message just put in the outbox (not sequenced yet).
    fn stored(id: i64, subscriptions: u64) -> Self {
        Self { id: Some(id), seq: None, duplicate: false, subscriptions }
    }
}

fn checked_payload(payload: &serde_json::Value, idempotency_key: Option<&str>) -> AppResult<String> {
    let body = serde_json::to_string(payload).map_err(|_| AppError::invalid("payload", "payload is not serializable"))?;
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(AppError::invalid("payload", format!("payload exceeds {MAX_PAYLOAD_BYTES} bytes")));
    }
    if idempotency_key.is_some_and(|key| key.is_empty() || key.len() > 191) {
        return Err(AppError::invalid("idempotency_key", "idempotency_key must be 1 to 191 characters"));
    }
    Ok(body)
}

/// A topic as its publishers see it.
struct Audience {
    topic_id: i64,
    members_may_publish: bool,
    /// How many subscriptions (not disabled) match the topic.
    subscriptions: u64,
}

/// The topic and how many subscriptions match it, in one statement; `None` when there
/// is no such topic.
async fn audience<C: ConnectionTrait>(conn: &C, topic: &TopicName) -> AppResult<Option<Audience>> {
    let matching = Query::select()
        .expr(Expr::col(subscription::Column::Id).count())
        .from(subscription::Entity)
        .and_where(subscription::Column::Pattern.is_in(topic.matching_patterns()))
        .and_where(subscription::Column::State.ne(SubscriptionState::Disabled))
        .to_owned();
    let found: Option<(i64, bool, i64)> = topic::Entity::find()
        .select_only()
        .column(topic::Column::Id)
        .column(topic::Column::MembersMayPublish)
        .expr_as(Expr::SubQuery(None, Box::new(matching.into())), "subscriptions")
        .filter(topic::Column::Name.eq(topic.as_str()))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(found.map(|(topic_id, members_may_publish, n)| Audience { topic_id, members_may_publish, subscriptions: Ord::max(n, 0) as u64 }))
}

/// A row of the outbox: a message waiting for the sequencer.
fn outbox_row(topic_id: i64, payload: String, idempotency_key: Option<&str>, published_by: Option<i64>, now: i64) -> outbox::ActiveModel {
    outbox::ActiveModel {
        topic_id: Set(topic_id),
        payload: Set(payload),
        idempotency_key: Set(idempotency_key.map(str::to_owned)),
        published_by: Set(published_by),
        created_at: Set(now),
        ..Default::default()
    }
}

/// Inserts one message published under `key` into the outbox on its own (autocommit:
/// nothing else is written with it, so it needs no transaction of its own — one round
/// trip), or finds the first one published under that key.
async fn enqueue_keyed(conn: &impl ConnectionTrait, audience: &Audience, payload: String, key: &str, published_by: i64) -> AppResult<Published> {
    let (topic_id, subscriptions) = (audience.topic_id, audience.subscriptions);
    if subscriptions == 0 {
        return Ok(Published::unsent());
    }
    if let Some(first) = first_with_key(conn, topic_id, key).await? {
        return Ok(first);
    }
    match outbox::Entity::insert(outbox_row(topic_id, payload, Some(key), Some(published_by), now_ms())).exec(conn).await {
        Ok(res) => Ok(Published::stored(res.last_insert_id, subscriptions)),
        // The same key went into the outbox a moment ago (it waited for that commit).
        Err(e) if is_unique_violation(&e) => first_with_key(conn, topic_id, key)
            .await?
            .ok_or_else(|| AppError::new(503, DB_CONFLICT, "an idempotent publish raced its sequencing")),
        Err(e) => Err(e.into()),
    }
}

/// The message published earlier under `key` on the topic, sequenced or not yet. The
/// outbox is read first: a row only ever moves from there to the messages, so reading in
/// that order cannot miss one that the sequencer moves between the two reads.
async fn first_with_key<C: ConnectionTrait>(conn: &C, topic_id: i64, key: &str) -> AppResult<Option<Published>> {
    let duplicate = |id, seq| Published { id: Some(id), seq, duplicate: true, subscriptions: 0 };
    let waiting = outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Id)
        .filter(outbox::Column::TopicId.eq(topic_id))
        .filter(outbox::Column::IdempotencyKey.eq(key))
        .into_tuple::<i64>()
        .one(conn)
        .await?;
    if let Some(id) = waiting {
        return Ok(Some(duplicate(id, None)));
    }
    let sequenced = message::Entity::find()
        .filter(message::Column::TopicId.eq(topic_id))
        .filter(message::Column::IdempotencyKey.eq(key))
        .one(conn)
        .await?;
    Ok(sequenced.map(|m| duplicate(m.id, Some(m.seq))))
}

/// Publishes for a caller of the REST API or the admin page: admins on any topic,
/// members where the topic lets them. With an idempotency key, publishing the same key
/// twice returns the first message and delivers once. When no subscription matches,
/// nothing is stored — the app publishes private data (chat texts, event details,
/// invitees), which is kept only as long as someone is to receive it.
///
/// A publish without a key shares one transaction with those arriving at the same time
/// ([`Publishes`], group commit): one commit per publish was the bound. A keyed one is
/// written alone, since it first looks for the key's earlier message.
#[tracing::instrument(skip(state, caller, payload), fields(caller = %caller.username()))]
pub async fn publish_as(state: &AppState, caller: &Caller, topic: &str, payload: &serde_json::Value, idempotency_key: Option<&str>) -> AppResult<Published> {
    let name = TopicName::parse(topic).map_err(|_| AppError::not_found("topic"))?;
    let body = checked_payload(payload, idempotency_key)?;
    let Some(key) = idempotency_key else {
        let request = NewPublish { topic: name, body, publisher: caller.id(), admin: caller.is_admin() };
        return state.part::<PublishQueue>().0.submit(request).await?;
    };
    // One read (the topic, who may publish, its audience) and one insert. A topic deleted
    // in between leaves the row to the sequencer, which drops it and says so.
    let db = &state.db;
    let audience = audience(&db.conn, &name).await?;
    let audience = may_publish(audience.as_ref(), caller.is_admin())?;
    let published = db.retrying(|| enqueue_keyed(&db.conn, audience, body.clone(), key, caller.id())).await?;
    if published.id.is_some() && !published.duplicate {
        db.waker(SEQUENCER_WAKER).notify_one();
        metrics::counter!("broker_published_total").increment(1);
    }
    Ok(published)
}

/// The topic `audience` describes, if the caller may publish to it (404 when there is
/// no such topic, 403 when only admins may publish there).
fn may_publish(audience: Option<&Audience>, admin: bool) -> AppResult<&Audience> {
    let audience = audience.ok_or_else(|| AppError::not_found("topic"))?;
    if !admin && !audience.members_may_publish {
        return Err(AppError::forbidden("only admins may publish to this topic"));
    }
    Ok(audience)
}

/// A publish without an idempotency key, its payload already checked.
pub(super) struct NewPublish {
    topic: TopicName,
    body: String,
    publisher: i64,
    admin: bool,
}

/// Publishes written in batches (see [`crate::platform::group_commit`]): one read per
/// topic in the batch and one insert per chunk of their outbox rows ([`insert_ids`]; one
/// per row on MySQL). Each publish gets its own answer — its message, or why it may not
/// publish — while a failed statement fails the batch (then written publish by publish).
pub(super) struct Publishes {
    /// Whether the rows go in with `INSERT … RETURNING id` ([`Db::insert_returns_ids`]).
    returning: bool,
}

impl Batch for Publishes {
    type Request = NewPublish;
    type Answer = AppResult<Published>;
    const WHAT: &'static str = "broker publishes";
    const MAX: usize = 256;

    fn write<'a>(&'a self, txn: &'a WriteTxn, publishes: &'a [NewPublish]) -> BoxFuture<'a, AppResult<Vec<AppResult<Published>>>> {
        Box::pin(enqueue_all(txn, publishes, self.returning))
    }
}

async fn enqueue_all(txn: &WriteTxn, publishes: &[NewPublish], returning: bool) -> AppResult<Vec<AppResult<Published>>> {
    let mut audiences: HashMap<&str, Option<Audience>> = HashMap::new();
    for p in publishes {
        if !audiences.contains_key(p.topic.as_str()) {
            audiences.insert(p.topic.as_str(), audience(&**txn, &p.topic).await?);
        }
    }
    let now = now_ms();
    // Each publish's audience (or why it may not publish); those with subscribers get a row.
    let checked: Vec<AppResult<&Audience>> = publishes.iter().map(|p| may_publish(audiences[p.topic.as_str()].as_ref(), p.admin)).collect();
    let rows: Vec<outbox::ActiveModel> = publishes
        .iter()
        .zip(&checked)
        .filter_map(|(p, audience)| audience.as_ref().ok().filter(|a| a.subscriptions > 0).map(|a| outbox_row(a.topic_id, p.body.clone(), None, Some(p.publisher), now)))
        .collect();
    let stored = rows.len() as u64;
    let ids = insert_ids(&**txn, returning, rows, |row| row.payload.try_as_ref().map_or(0, String::len)).await?;
    if ids.len() as u64 != stored {
        // Fails the whole batch (rolled back), rather than commit rows nobody is told of.
        return Err(AppError::internal_because(format!("{} outbox ids for {stored} stored publishes", ids.len())));
    }
    let mut ids = ids.into_iter();
    if stored > 0 {
        // From the commit itself, not from the callers: one may have left meanwhile.
        txn.wake_after_commit(SEQUENCER_WAKER);
        txn.after_commit(move || metrics::counter!("broker_published_total").increment(stored));
    }
    Ok(checked
        .into_iter()
        .map(|audience| {
            let audience = audience?;
            if audience.subscriptions == 0 {
                return Ok(Published::unsent());
            }
            let id = ids.next().ok_or_else(|| AppError::internal_because("fewer outbox ids than stored publishes"))?;
            Ok(Published::stored(id, audience.subscriptions))
        })
        .collect())
}

/// The queue of publishes waiting for their shared transaction (a part of the app state).
#[derive(Clone)]
pub struct PublishQueue(GroupCommit<Publishes>);

impl PublishQueue {
    /// Starts the queue's writers on `db`.
    pub fn start(db: &Db) -> Self {
        Self(GroupCommit::start(db.clone(), Publishes { returning: db.insert_returns_ids() }))
    }
}

/// "Send test message" on the broker page: a small payload marked as a test, published
/// like any other (and so refused to whoever may not publish to the topic).
pub async fn send_test_message(state: &AppState, caller: &Caller, topic: &str) -> AppResult<Published> {
    let payload = serde_json::json!({
        "test": true,
        "text": "a test message sent from the broker page",
        "sent_by": caller.username(),
        "sent_at": crate::platform::time::to_rfc3339(crate::platform::time::now_ms()),
    });
    publish_as(state, caller, topic, &payload, None).await
}

/// The broker as the app's [`EventOutlet`]: the other capabilities publish with
/// `txn.publish(topic, payload)` and never name the broker.
pub struct Outlet;

#[async_trait::async_trait]
impl EventOutlet for Outlet {
    async fn publish(&self, txn: &WriteTxn, topic: &str, payloads: &[serde_json::Value]) -> AppResult<()> {
        publish_events(txn, topic, payloads).await
    }
}

/// Makes the broker receive every event published on `db` (done once at start-up).
pub fn install(db: &Db) {
    db.install_outlet(std::sync::Arc::new(Outlet));
}

/// Publishes the app's own events on `topic` (created if missing), in this order: one
/// read and one insert however many there are (a batch of chat posts publishes this way).
pub async fn publish_events(txn: &WriteTxn, topic: &str, payloads: &[serde_json::Value]) -> AppResult<()> {
    let name = TopicName::parse(topic).map_err(|_| AppError::internal_because(format!("internal producer used the invalid topic name {topic:?}")))?;
    let bodies = payloads.iter().map(|p| checked_payload(p, None)).collect::<AppResult<Vec<String>>>()?;
    let Audience { topic_id, subscriptions, .. } = match audience(&**txn, &name).await? {
        Some(found) => found,
        None => {
            super::admin::ensure_topic(&**txn, &name, "").await?;
            audience(&**txn, &name).await?.ok_or_else(|| AppError::internal_because(format!("topic {name} missing right after it was ensured")))?
        }
    };
    if subscriptions == 0 || bodies.is_empty() {
        return Ok(()); // nobody is to receive them: nothing is kept
    }
    let now = now_ms();
    for chunk in bodies.chunks(CHUNK) {
        let rows = chunk.iter().map(|body| outbox_row(topic_id, body.clone(), None, None, now));
        outbox::Entity::insert_many(rows).exec_without_returning(&**txn).await?;
    }
    txn.wake_after_commit(SEQUENCER_WAKER);
    let published = bodies.len() as u64;
    txn.after_commit(move || metrics::counter!("broker_published_total").increment(published));
    Ok(())
}

/// The subscriptions (not disabled) whose pattern matches `topic`.
pub(super) async fn matching_subscriptions<C: ConnectionTrait>(conn: &C, topic: &TopicName) -> AppResult<Vec<subscription::Model>> {
    Ok(subscription::Entity::find()
        .filter(subscription::Column::Pattern.is_in(topic.matching_patterns()))
        .filter(subscription::Column::State.ne(SubscriptionState::Disabled))
        .all(conn)
        .await?)
}

/// A delivery of `message_id` on a lane, due now: how sequencing and replay both start one.
pub(super) fn pending_delivery(lane_id: i64, message_id: i64, subscriber_id: i64, now: i64) -> delivery::ActiveModel {
    delivery::ActiveModel {
        lane_id: Set(lane_id),
        message_id: Set(message_id),
        subscriber_id: Set(subscriber_id),
        state: Set(DeliveryState::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_status: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
        ..Default::default()
    }
}

/// Appends one pending delivery of each of `message_ids` (in that order) to the lane of
/// every subscription in `subs`: a handful of statements per [`CHUNK`] rows.
async fn fan_out<C: ConnectionTrait>(conn: &C, topic_id: i64, subs: &[subscription::Model], message_ids: &[i64], now: i64) -> AppResult<()> {
    for subs in subs.chunks(CHUNK) {
        let lanes = store::lanes_for(conn, topic_id, subs, now).await?;
        // Message by message, so each lane's deliveries follow the sequence.
        let rows: Vec<delivery::ActiveModel> = message_ids
            .iter()
            .flat_map(|&m| lanes.iter().map(move |l| pending_delivery(l.id, m, l.subscriber_id, now)))
            .collect();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<delivery::ActiveModel> = rows.by_ref().take(CHUNK).collect();
            delivery::Entity::insert_many(chunk).exec_without_returning(conn).await?;
        }
        let ids: Vec<i64> = lanes.iter().map(|l| l.id).collect();
        store::enqueue_on_lanes(conn, &ids, message_ids.len() as i64, now).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Sequencing

/// Moves committed outbox rows into the topics' order and onto their lanes.
#[derive(Clone)]
pub struct Sequencer {
    db: Db,
}

impl Sequencer {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Sequences until `shutdown`: at once when a local publish commits, else every
    /// [`SEQUENCER_POLL`].
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let wake = self.db.waker(SEQUENCER_WAKER);
        while !*shutdown.borrow() {
            match self.run_once().await {
                Ok(n) if n > 0 => continue, // more may have come in meanwhile
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err.message, "sequencing failed; will retry");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(SEQUENCER_POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One round: a batch of every topic with rows in the outbox, oldest first. Returns
    /// how many messages it sequenced (or dropped as duplicates or unwanted).
    pub async fn run_once(&self) -> AppResult<usize> {
        let oldest: Vec<i64> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::TopicId)
            .order_by_asc(outbox::Column::Id)
            .limit(SEQUENCE_BATCH)
            .into_tuple()
            .all(&self.db.conn)
            .await?;
        let mut seen = HashSet::new();
        let (mut total, mut sequenced_any, mut failure) = (0, false, None);
        for topic_id in oldest.into_iter().filter(|t| seen.insert(*t)) {
            // One topic that cannot be sequenced must not hold up the others.
            match self.sequence(topic_id).await {
                Ok(n) => (total, sequenced_any) = (total + n, true),
                Err(err) => {
                    tracing::error!(topic.id = topic_id, error = %err.message, "sequencing this topic failed; the others go on");
                    failure = Some(err);
                }
            }
        }
        match failure {
            Some(err) if !sequenced_any => Err(err),
            _ => Ok(total),
        }
    }

    /// Sequences up to [`SEQUENCE_BATCH`] outbox rows of one topic in one transaction.
    #[tracing::instrument(skip(self), err(Display))]
    async fn sequence(&self, topic_id: i64) -> AppResult<usize> {
        let db = &self.db;
        db_write!(db, |txn| {
            let locked = skip_locked(topic::Entity::find_by_id(topic_id), db.backend()).one(&*txn).await?;
            let Some(t) = locked else {
                // Another process is sequencing this topic, and goes on with what follows.
                // Or the topic is gone (deleted while its messages waited): nobody receives them.
                let exists = topic::Entity::find_by_id(topic_id).one(&*txn).await?.is_some();
                if !exists {
                    let dropped = outbox::Entity::delete_many().filter(outbox::Column::TopicId.eq(topic_id)).exec(&*txn).await?.rows_affected;
                    // Accepted (the publisher has its id) and now never delivered: say so.
                    txn.after_commit(move || {
                        tracing::warn!(topic_id, dropped, "published messages dropped: their topic was deleted before they were sequenced");
                        metrics::counter!("broker_dropped_total", "reason" => "topic_deleted").increment(dropped);
                    });
                }
                return Ok(0);
            };
            let waiting: Vec<(i64, Option<String>)> = outbox::Entity::find()
                .select_only()
                .column(outbox::Column::Id)
                .column(outbox::Column::IdempotencyKey)
                .filter(outbox::Column::TopicId.eq(topic_id))
                .order_by_asc(outbox::Column::Id)
                .limit(SEQUENCE_BATCH)
                .into_tuple()
                .all(&*txn)
                .await?;
            if waiting.is_empty() {
                return Ok(0);
            }
            let taken: Vec<i64> = waiting.iter().map(|(id, _)| *id).collect();
            let name = TopicName::parse(&t.name)?;
            let subs = matching_subscriptions(&*txn, &name).await?;
            let fresh = if subs.is_empty() { Vec::new() } else { self.not_yet_published(&txn, topic_id, &waiting).await? };
            if !fresh.is_empty() {
                self.number(&txn, &t, &fresh).await?;
                fan_out(&*txn, topic_id, &subs, &fresh, now_ms()).await?;
                txn.wake_after_commit(DISPATCHER_WAKER);
            }
            for chunk in taken.chunks(CHUNK) {
                outbox::Entity::delete_many().filter(outbox::Column::Id.is_in(chunk.to_vec())).exec(&*txn).await?;
            }
            let sequenced = fresh.len() as u64;
            txn.after_commit(move || metrics::counter!("broker_sequenced_total").increment(sequenced));
            Ok(taken.len())
        })
    }

    /// The rows of `waiting` to sequence: all but those whose idempotency key a message
    /// of the topic already carries (published again while the first was being
    /// sequenced). Ids in order.
    async fn not_yet_published(&self, txn: &WriteTxn, topic_id: i64, waiting: &[(i64, Option<String>)]) -> AppResult<Vec<i64>> {
        let keys: Vec<String> = waiting.iter().filter_map(|(_, k)| k.clone()).collect();
        let used: HashSet<String> = if keys.is_empty() {
            HashSet::new()
        } else {
            message::Entity::find()
                .select_only()
                .column(message::Column::IdempotencyKey)
                .filter(message::Column::TopicId.eq(topic_id))
                .filter(message::Column::IdempotencyKey.is_in(keys))
                .into_tuple::<Option<String>>()
                .all(&**txn)
                .await?
                .into_iter()
                .flatten()
                .collect()
        };
        Ok(waiting.iter().filter(|(_, k)| k.as_ref().is_none_or(|k| !used.contains(k))).map(|(id, _)| *id).collect())
    }

    /// Copies `ids` (in order) from the outbox into the topic's messages with the next
    /// sequence numbers — the payloads move inside the database, not over the wire — and
    /// advances the topic's counter.
    async fn number(&self, txn: &WriteTxn, t: &topic::Model, ids: &[i64]) -> AppResult<()> {
        let backend = self.db.backend();
        let mut next = t.last_seq;
        for chunk in ids.chunks(CHUNK) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "INSERT INTO broker_messages (id, topic_id, seq, payload, idempotency_key, published_by, created_at) \
                 SELECT id, topic_id, ? + ROW_NUMBER() OVER (ORDER BY id), payload, idempotency_key, published_by, created_at \
                 FROM broker_outbox WHERE id IN ({marks})"
            );
            let mut values: Vec<sea_orm::Value> = vec![next.into()];
            values.extend(chunk.iter().map(|&id| sea_orm::Value::from(id)));
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
            next += chunk.len() as i64;
        }
        topic::Entity::update_many()
            .col_expr(topic::Column::LastSeq, Expr::value(next))
            .filter(topic::Column::Id.eq(t.id))
            .exec(&**txn)
            .await?;
        Ok(())
    }
}
