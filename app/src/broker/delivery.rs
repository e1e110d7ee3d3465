//! The dispatcher: delivers each lane's head message, in order, one request in flight
//! per lane, across any number of processes.
//!
//! A lane is claimed with `FOR UPDATE SKIP LOCKED` (the write gate on SQLite) and leased
//! by pushing its `next_due_at` past the request timeout; the claim also bumps its
//! `lease_version`. Outcomes are written under the lane's row lock and only if the lease
//! version is still ours, so a worker that lost its lease (it stalled, its process died)
//! can never move the lane. Successes are recorded in batches (one transaction for up to
//! [`FLUSH_MAX`] of them, or whatever came in [`FLUSH_AFTER`]); a failure is recorded at
//! once. A worker that dies holding unrecorded successes loses nothing: the lease runs out
//! and those heads are sent again, with the same `webhook-id`, before anything behind
//! them — a redelivery, never a reordering.

use super::domain::{DeliveryState, FailurePolicy, SubscriptionState};
use super::admin::signing_secrets;

use super::publish::DISPATCHER_WAKER;
use super::service::{self};
use super::signature::signature_header;
use super::store::{self, attempt, delivery, lane, message, subscriber, subscription, topic};
use crate::platform::targets::{guarded_client, TargetPolicy};
use crate::db_write;
use crate::error::AppResult;
use crate::platform::backoff::nominal;
use crate::platform::changes;
use crate::platform::db::skip_locked;
use super::settings::BrokerSettings;
use crate::platform::state::AppState;
use crate::platform::time::{now_ms, to_rfc3339};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, FromQueryResult, JoinType, QueryFilter, QueryOrder, QuerySelect};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

/// Response bytes read at most (the rest is discarded) and kept in the attempt log.
const READ_CAP: usize = 64 * 1024;
const KEEP_BODY: usize = 1024;
/// Consecutive deliveries one claim may make on a lane before giving others a turn.
const BATCH: usize = 100;
/// Successes recorded together at most…
const FLUSH_MAX: usize = 50;
/// …or whatever succeeded within this long. No request starts later than this after the
/// lease was last renewed, so a request never outlives its lease.
const FLUSH_AFTER: Duration = Duration::from_millis(25);
/// How often the dispatcher looks for due lanes nobody woke it for (another process's
/// deliveries, retries coming due).
const POLL: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct Dispatcher {
    state: AppState,
    /// `host-pid`, recorded with each attempt.
    worker: String,
    client: reqwest::Client,
    policy: Arc<TargetPolicy>,
    settings: BrokerSettings,
}

/// What one HTTP attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered { status: u16 },
    Failed { status: Option<u16>, error: String, retry_after: Option<Duration> },
    /// 410 Gone: the receiver asks us to stop; the subscription is disabled.
    Gone,
    /// Refused before sending (SSRF policy, an unreadable secret); retried like any
    /// failure in case the address or the configuration changes.
    Refused { error: String },
}

impl Outcome {
    fn status(&self) -> Option<i32> {
        match self {
            Outcome::Delivered { status } => Some(*status as i32),
            Outcome::Failed { status, .. } => status.map(i32::from),
            Outcome::Gone => Some(410),
            Outcome::Refused { .. } => None,
        }
    }

    fn error(&self) -> Option<String> {
        match self {
            Outcome::Delivered { .. } => None,
            Outcome::Failed { error, .. } | Outcome::Refused { error } => Some(truncate(error, 500)),
            Outcome::Gone => Some("HTTP 410: the receiver asked to stop".to_owned()),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Failed { .. } => "failed",
            Outcome::Gone => "gone",
            Outcome::Refused { .. } => "refused",
        }
    }
}

/// How a subscription retries, as the state machine needs it.
#[derive(Debug, Clone, Copy)]
pub struct RetryRules {
    pub max_attempts: i32,
    pub policy: FailurePolicy,
    pub base: Duration,
    pub cap: Duration,
}

/// What an outcome does to its delivery and lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The delivery's new state (`pending` while it will be tried again or holds a
    /// blocked lane).
    pub state: DeliveryState,
    pub finished_at: Option<i64>,
    /// When the next attempt is due (a retry), else the delivery's time stays.
    pub retry_at: Option<i64>,
    /// Change of the lane's pending count.
    pub pending_delta: i64,
    /// The lane stops until an operator retries or skips the head.
    pub blocks: bool,
    /// The receiver asked to stop: the subscription and its lanes are disabled.
    pub disables: bool,
}

/// The delivery state machine: what attempt number `attempt` ending in `outcome` does,
/// at `now`. Pure, so every edge is unit-tested; `delay_jitter` scales the nominal
/// backoff (0.9–1.1 in production, 1.0 in tests).
pub fn transition(rules: &RetryRules, outcome: &Outcome, attempt: i32, now: i64, delay_jitter: f64) -> Transition {
    let stay = Transition { state: DeliveryState::Pending, finished_at: None, retry_at: None, pending_delta: 0, blocks: false, disables: false };
    let hint = match outcome {
        Outcome::Delivered { .. } => return Transition { state: DeliveryState::Delivered, finished_at: Some(now), pending_delta: -1, ..stay },
        Outcome::Gone => return Transition { disables: true, ..stay },
        Outcome::Failed { retry_after, .. } => *retry_after,
        Outcome::Refused { .. } => None,
    };
    if attempt >= rules.max_attempts {
        return match rules.policy {
            FailurePolicy::DeadLetter => Transition { state: DeliveryState::Dead, finished_at: Some(now), pending_delta: -1, ..stay },
            FailurePolicy::Block => Transition { blocks: true, ..stay },
        };
    }
    let delay = match hint {
        // The receiver said when; honour it, within a day.
        Some(hint) => hint.min(Duration::from_secs(86_400)),
        None => nominal(attempt as u32, rules.base, rules.cap).mul_f64(delay_jitter).min(rules.cap),
    };
    Transition { retry_at: Some(now + delay.as_millis() as i64), ..stay }
}

struct Attempted {
    outcome: Outcome,
    started_at: i64,
    duration_ms: i64,
    body: Option<String>,
}

struct Claimed {
    id: i64,
    lease_version: i64,
    /// When the lease was taken (before the claim's commit, so on the safe side): the
    /// worker's clock for how much of it is left.
    leased_at: Instant,
}

/// A lane's head: its delivery with the message it carries, read in one query.
#[derive(Debug, FromQueryResult)]
struct Head {
    id: i64,
    attempts: i32,
    next_attempt_at: i64,
    message_id: i64,
    payload: String,
    published_at: i64,
}

/// The lane being worked and what delivering it needs, read once per claim.
struct LaneWork {
    claimed: Claimed,
    lane: lane::Model,
    sub: subscription::Model,
    target: subscriber::Model,
    topic_name: String,
}

/// `broker_backlog{subscription}`: what waits on scheduled lanes, by subscription, set by
/// every process's dispatcher (so each process's /metrics and System page have it) at
/// most every [`BacklogReport::EVERY`]. A subscription whose backlog is gone is set to 0
/// once, then no longer reported.
#[derive(Default)]
struct BacklogReport {
    last: Option<std::time::Instant>,
    reported: std::collections::BTreeSet<i64>,
}

impl BacklogReport {
    const EVERY: Duration = Duration::from_secs(15);

    async fn maybe_report(&mut self, db: &crate::platform::db::Db) {
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        match super::store::due_backlog(&db.conn).await {
            Ok(backlog) => {
                let now: std::collections::BTreeSet<i64> = backlog.iter().map(|(s, _)| *s).collect();
                for gone in self.reported.difference(&now) {
                    metrics::gauge!("broker_backlog", "subscription" => gone.to_string()).set(0.0);
                }
                for (subscription, pending) in &backlog {
                    metrics::gauge!("broker_backlog", "subscription" => subscription.to_string()).set(*pending as f64);
                }
                self.reported = now;
            }
            Err(e) => tracing::warn!(error = %e.message, "reading the broker backlog failed; will retry"),
        }
    }
}

impl Dispatcher {
    pub fn new(state: AppState) -> Self {
        let settings = state.settings.part::<BrokerSettings>().clone();
        let policy = Arc::new(settings.target_policy());
        let client = guarded_client(policy.clone(), settings.timeout)
            .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
            // As many kept-alive connections as lanes can be busy at once.
            .pool_max_idle_per_host(settings.concurrency)
            .build()
            .expect("static HTTP client configuration");
        let worker = format!("{}-{}", crate::platform::jobs::hostname(), std::process::id());
        Self { state, worker, client, policy, settings }
    }

    /// The lease a claim (or each outcome that keeps the lane) takes: the request timeout
    /// plus a margin for the bookkeeping around it, so a request from a worker that lost
    /// its lease has been cut off before anyone else may send the same head.
    fn lease(&self) -> i64 {
        (self.settings.timeout + Duration::from_secs(5)).as_millis() as i64
    }

    /// Delivers until `shutdown`, `concurrency` lanes at a time: at once when this
    /// process sequenced new deliveries or a lane worker finished, else every [`POLL`].
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let wake = self.state.db.waker(DISPATCHER_WAKER);
        tracing::info!(concurrency = self.settings.concurrency, "webhook dispatcher started");
        let mut backlog = BacklogReport::default();
        while !*shutdown.borrow() {
            backlog.maybe_report(&self.state.db).await;
            // Wait for a free slot (a worker finishing frees one).
            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => permit.expect("semaphore open"),
                _ = shutdown.changed() => continue,
            };
            let free = permits.available_permits() + 1;
            let mut full = false;
            match self.claim(free).await {
                Ok(lanes) => {
                    full = lanes.len() == free;
                    let mut first = Some(first);
                    for claimed in lanes {
                        let permit = match first.take() {
                            Some(p) => p,
                            None => permits.clone().acquire_owned().await.expect("semaphore open"),
                        };
                        let me = self.clone();
                        tokio::spawn(async move {
                            me.work_lane(claimed).await;
                            drop(permit);
                            // The lane may have work left for its next turn; others may be due.
                            me.state.db.waker(DISPATCHER_WAKER).notify_one();
                        });
                    }
                }
                Err(err) => {
                    drop(first);
                    tracing::warn!(error = %err.message, "claiming lanes failed; will retry");
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
        // In-flight requests finish (bounded by the timeout); their leases cover a hard stop.
        let _ = tokio::time::timeout(self.settings.timeout + Duration::from_secs(5), permits.acquire_many(self.settings.concurrency as u32)).await;
        tracing::info!("webhook dispatcher stopped");
    }

    /// Sequences what is waiting, then delivers everything due now, lane by lane, and
    /// returns how many lanes it worked. Tests and one-shot commands use it instead of
    /// the loops.
    pub async fn run_due(&self) -> AppResult<usize> {
        super::publish::Sequencer::new(self.state.db.clone()).run_once().await?;
        let mut total = 0;
        loop {
            let lanes = self.claim(self.settings.concurrency).await?;
            if lanes.is_empty() {
                return Ok(total);
            }
            total += lanes.len();
            futures::future::join_all(lanes.into_iter().map(|l| self.work_lane(l))).await;
        }
    }

    /// Leases up to `limit` due lanes: a cheap look first (most polls find nothing and
    /// should cost one indexed read, no transaction), then lock, bump and commit.
    #[tracing::instrument(skip(self), err(Display))]
    async fn claim(&self, limit: usize) -> AppResult<Vec<Claimed>> {
        let db = &self.state.db;
        let now = now_ms();
        let any_due = lane::Entity::find().select_only().column(lane::Column::Id).filter(lane::Column::NextDueAt.lte(now)).into_tuple::<i64>().one(&db.conn).await?;
        if any_due.is_none() {
            return Ok(Vec::new());
        }
        db_write!(db, |txn| {
            // Taken again on a rerun, so the lease runs from the claim that holds.
            let (now, leased_at) = (now_ms(), Instant::now());
            let due = lane::Entity::find()
                .filter(lane::Column::NextDueAt.lte(now))
                .order_by_asc(lane::Column::NextDueAt)
                .limit(limit as u64);
            let lanes = skip_locked(due, db.backend()).all(&*txn).await?;
            if lanes.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<i64> = lanes.iter().map(|l| l.id).collect();
            lane::Entity::update_many()
                .col_expr(lane::Column::NextDueAt, Expr::value(now + self.lease()))
                .col_expr(lane::Column::LeaseVersion, Expr::col(lane::Column::LeaseVersion).add(1))
                .filter(lane::Column::Id.is_in(ids))
                .exec(&*txn)
                .await?;
            Ok(lanes.into_iter().map(|l| Claimed { id: l.id, lease_version: l.lease_version + 1, leased_at }).collect())
        })
    }

    /// Delivers a claimed lane's heads in order until it is empty, waiting on a retry,
    /// inactive, or has had its turn.
    #[tracing::instrument(skip(self, claimed), fields(lane = claimed.id))]
    async fn work_lane(&self, claimed: Claimed) {
        if let Err(err) = self.deliver_heads(claimed).await {
            // The lease runs out and the lane is claimed again.
            tracing::warn!(error = %err.message, "lane delivery interrupted");
        }
    }

    async fn lane_work(&self, claimed: Claimed) -> AppResult<Option<LaneWork>> {
        let conn = &self.state.db.conn;
        let Some(lane) = lane::Entity::find_by_id(claimed.id).one(conn).await? else { return Ok(None) };
        let Some(sub) = subscription::Entity::find_by_id(lane.subscription_id).one(conn).await? else { return Ok(None) };
        let Some(target) = subscriber::Entity::find_by_id(lane.subscriber_id).one(conn).await? else { return Ok(None) };
        let topic_name = topic::Entity::find_by_id(lane.topic_id).one(conn).await?.map(|t| t.name).unwrap_or_default();
        Ok(Some(LaneWork { claimed, lane, sub, target, topic_name }))
    }

    /// The next `limit` pending deliveries of a lane with their messages, oldest first,
    /// by the `(lane_id, state, id)` index.
    async fn heads(&self, lane_id: i64, limit: usize) -> AppResult<Vec<Head>> {
        Ok(delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .column(delivery::Column::Attempts)
            .column(delivery::Column::NextAttemptAt)
            .column(delivery::Column::MessageId)
            .column_as(message::Column::Payload, "payload")
            .column_as(message::Column::CreatedAt, "published_at")
            .join(JoinType::InnerJoin, delivery::Entity::belongs_to(message::Entity).from(delivery::Column::MessageId).to(message::Column::Id).into())
            .filter(delivery::Column::LaneId.eq(lane_id))
            .filter(delivery::Column::State.eq(DeliveryState::Pending))
            .order_by_asc(delivery::Column::Id)
            .limit(limit as u64)
            .into_model::<Head>()
            .all(&self.state.db.conn)
            .await?)
    }

    async fn deliver_heads(&self, claimed: Claimed) -> AppResult<()> {
        let Some(work) = self.lane_work(claimed).await? else { return Ok(()) };
        let heads = self.heads(work.lane.id, BATCH).await?;
        let mut done: Vec<(Head, Attempted)> = Vec::new();
        // The lease runs from the claim, not from here: reading the lane's work took time.
        let mut renewed = work.claimed.leased_at;
        let total = heads.len();
        for (turn, head) in heads.into_iter().enumerate() {
            let due = work.lane.active && head.next_attempt_at <= now_ms();
            // Record what succeeded before going on: a stop, a full batch, or time (the
            // lease must be renewed before any request starts late in it).
            let must_flush = !due || done.len() >= FLUSH_MAX || renewed.elapsed() >= FLUSH_AFTER;
            if !done.is_empty() && must_flush {
                let outcomes = std::mem::take(&mut done);
                if !self.record(&work, &outcomes, due).await? {
                    return Ok(());
                }
                renewed = Instant::now();
            }
            if !due {
                // Inactive, or the head waits for its retry: release the lease.
                let at = work.lane.active.then_some(head.next_attempt_at);
                return self.release(&work.claimed, at).await;
            }
            let attempted = self.attempt(&work, &head).await;
            let failed = !matches!(attempted.outcome, Outcome::Delivered { .. });
            done.push((head, attempted));
            if failed {
                // A failure is written at once (with the successes before it) and ends the turn.
                self.record(&work, &done, false).await?;
                return Ok(());
            }
            if turn + 1 == total {
                break;
            }
        }
        if done.is_empty() {
            // No pending head was read: the lane idles, unless work came in meanwhile.
            return self.release(&work.claimed, None).await;
        }
        // The lane's turn is over (or it ran dry); the next claim goes on with what is left.
        self.record(&work, &done, false).await?;
        Ok(())
    }

    /// One signed POST of the head's message to the subscriber's endpoint.
    async fn attempt(&self, work: &LaneWork, head: &Head) -> Attempted {
        let started_at = now_ms();
        let clock = Instant::now();
        let msg_id = format!("msg_{}", head.message_id);
        // Standard Webhooks envelope: {"type", "timestamp", "data"}; data is the payload as published.
        let body = format!(
            r#"{{"type":{},"timestamp":{},"data":{}}}"#,
            serde_json::Value::from(work.topic_name.as_str()),
            serde_json::Value::from(to_rfc3339(head.published_at)),
            head.payload
        );
        let timestamp = started_at / 1000;
        let secrets = match signing_secrets(&self.state.sealer, &work.target, started_at) {
            Ok(secrets) => secrets,
            Err(_) => {
                // Logged where it failed; retried like any failure until the key is fixed.
                let error = "the signing secret cannot be opened with SB_SECRET_KEY".to_owned();
                return Attempted { outcome: Outcome::Refused { error }, started_at, duration_ms: 0, body: None };
            }
        };
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let signature = match signature_header(&secrets, &msg_id, timestamp, body.as_bytes()) {
            Ok(signature) => signature,
            Err(unusable) => {
                tracing::error!(subscriber = work.target.id, error = %unusable, "cannot sign a delivery");
                return Attempted { outcome: Outcome::Refused { error: unusable.to_string() }, started_at, duration_ms: 0, body: None };
            }
        };
        let outcome = match self.policy.check_url(&work.target.url, "url") {
            Err(refused) => Outcome::Refused { error: refused.message },
            Ok(url) => {
                let request = self
                    .client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &msg_id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(body);
                return self.send(request, started_at, clock).await;
            }
        };
        Attempted { outcome, started_at, duration_ms: clock.elapsed().as_millis() as i64, body: None }
    }

    async fn send(&self, request: reqwest::RequestBuilder, started_at: i64, clock: Instant) -> Attempted {
        let result = request.send().await;
        let (outcome, body) = match result {
            Err(err) => {
                let error = if err.is_timeout() {
                    format!("no response within {:?}", self.settings.timeout)
                } else {
                    error_chain(&err)
                };
                (Outcome::Failed { status: None, error, retry_after: None }, None)
            }
            Ok(mut res) => {
                let status = res.status().as_u16();
                let retry_after = matches!(status, 429 | 503).then(|| retry_after(res.headers())).flatten();
                let body = read_capped(&mut res).await;
                let outcome = match status {
                    200..=299 => Outcome::Delivered { status },
                    410 => Outcome::Gone,
                    _ => Outcome::Failed { status: Some(status), error: format!("HTTP {status}"), retry_after },
                };
                (outcome, Some(body))
            }
        };
        let duration = clock.elapsed();
        metrics::histogram!("broker_delivery_duration_seconds").record(duration.as_secs_f64());
        Attempted { outcome, started_at, duration_ms: duration.as_millis() as i64, body }
    }

    fn rules(&self, sub: &subscription::Model) -> RetryRules {
        RetryRules {
            max_attempts: sub.max_attempts,
            policy: sub.policy,
            base: sub.retry_base_ms.map(|ms| Duration::from_millis(ms as u64)).unwrap_or(self.settings.retry_base),
            cap: sub.retry_max_ms.map(|ms| Duration::from_millis(ms as u64)).unwrap_or(self.settings.retry_max),
        }
    }

    /// Writes the outcomes of consecutive attempts on one lane (successes, maybe ending in
    /// one failure) in one transaction under the lane lock. Returns whether this worker
    /// may go on with the lane's next head (`more_turns` and the lane still flowing); the
    /// lease is renewed if so.
    async fn record(&self, work: &LaneWork, outcomes: &[(Head, Attempted)], more_turns: bool) -> AppResult<bool> {
        let db = &self.state.db;
        db_write!(db, |txn| {
            let l = store::lock_lane(&*txn, work.claimed.id).await?;
            let logs = outcomes.iter().map(|(head, a)| attempt::ActiveModel {
                delivery_id: Set(head.id),
                attempt: Set(head.attempts + 1),
                started_at: Set(a.started_at),
                duration_ms: Set(a.duration_ms),
                status_code: Set(a.outcome.status()),
                error: Set(a.outcome.error()),
                response_body: Set(a.body.as_deref().map(|b| truncate(b, KEEP_BODY))),
                worker: Set(self.worker.clone()),
                ..Default::default()
            });
            attempt::Entity::insert_many(logs).exec_without_returning(&*txn).await?;
            if l.lease_version != work.claimed.lease_version {
                // Another worker took the lane over; the attempts are logged, nothing else moves.
                return Ok(false);
            }
            let now = now_ms();
            let rules = self.rules(&work.sub);
            let (mut pending, mut blocked, mut active) = (l.pending, l.blocked, l.active);
            // `pending` moves only by rows that really left the pending state: an operator
            // may have skipped a head while it was in flight.
            // Successes by status code: one statement each (almost always just 200).
            let mut delivered: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
            let (mut last, mut retry_at) = (None, None);
            for (head, a) in outcomes {
                let t = transition(&rules, &a.outcome, head.attempts + 1, now, 0.9 + rand::random::<f64>() * 0.2);
                if t.state == DeliveryState::Delivered {
                    delivered.entry(a.outcome.status().unwrap_or(200)).or_default().push(head.id);
                } else {
                    if self.write_failure(&txn, work, head, a, &t).await? > 0 {
                        pending += t.pending_delta;
                    }
                    blocked |= t.blocks;
                    active &= !t.disables;
                    retry_at = t.retry_at;
                }
                let outcome = a.outcome.label();
                txn.after_commit(move || metrics::counter!("broker_deliveries_total", "outcome" => outcome).increment(1));
                last = Some(t.state);
            }
            for (status, ids) in delivered {
                let finished = delivery::Entity::update_many()
                    .col_expr(delivery::Column::State, Expr::value(DeliveryState::Delivered))
                    .col_expr(delivery::Column::Attempts, Expr::col(delivery::Column::Attempts).add(1))
                    .col_expr(delivery::Column::LastStatus, Expr::value(status))
                    .col_expr(delivery::Column::LastError, Expr::value(Option::<String>::None))
                    .col_expr(delivery::Column::FinishedAt, Expr::value(now))
                    .filter(delivery::Column::Id.is_in(ids))
                    .filter(delivery::Column::State.eq(DeliveryState::Pending))
                    .exec(&*txn)
                    .await?;
                pending -= finished.rows_affected as i64;
            }
            let keep_going = last == Some(DeliveryState::Delivered) && more_turns && pending > 0 && active && !blocked;
            let next_due = if keep_going {
                Some(now + self.lease())
            } else if !active || blocked || pending == 0 {
                None
            } else {
                Some(retry_at.unwrap_or(now))
            };
            store::write_lane(&*txn, l.id, pending, blocked, next_due).await?;
            let ids: Vec<i64> = outcomes.iter().map(|(h, _)| h.id).collect();
            let change = serde_json::json!({"deliveries": ids, "state": last.unwrap_or(DeliveryState::Pending)});
            changes::record(&*txn, &service::channel(work.lane.subscriber_id), &change).await?;
            Ok(keep_going)
        })
    }

    /// Writes a failed (or gone) attempt's transition to its delivery, and a 410's to the
    /// subscription and its lanes. Returns whether the delivery was still pending.
    async fn write_failure(&self, txn: &crate::platform::db::WriteTxn, work: &LaneWork, head: &Head, a: &Attempted, t: &Transition) -> AppResult<u64> {
        if t.disables {
            subscription::Entity::update_many()
                .col_expr(subscription::Column::State, Expr::value(SubscriptionState::Disabled))
                .col_expr(subscription::Column::DisabledReason, Expr::value("the endpoint answered 410 Gone"))
                .filter(subscription::Column::Id.eq(work.sub.id))
                .exec(&**txn)
                .await?;
            store::set_lanes_active(&**txn, work.sub.id, false).await?;
        }
        let updated = delivery::Entity::update_many()
            .col_expr(delivery::Column::State, Expr::value(t.state))
            .col_expr(delivery::Column::Attempts, Expr::value(head.attempts + 1))
            .col_expr(delivery::Column::LastStatus, Expr::value(a.outcome.status()))
            .col_expr(delivery::Column::LastError, Expr::value(a.outcome.error()))
            .col_expr(delivery::Column::FinishedAt, Expr::value(t.finished_at))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(t.retry_at.unwrap_or(head.next_attempt_at)))
            .filter(delivery::Column::Id.eq(head.id))
            .filter(delivery::Column::State.eq(DeliveryState::Pending))
            .exec(&**txn)
            .await?;
        Ok(updated.rows_affected)
    }

    /// Gives a lane back: see [`store::release_lane`].
    async fn release(&self, claimed: &Claimed, head_due: Option<i64>) -> AppResult<()> {
        let db = &self.state.db;
        db_write!(db, |txn| { store::release_lane(&*txn, claimed.id, claimed.lease_version, head_due).await })
    }
}
/// `Retry-After`: delay-seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ms = at.timestamp_millis() - now_ms();
    Some(Duration::from_millis(Ord::max(ms, 0) as u64))
}

async fn read_capped(res: &mut reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        let room = READ_CAP.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= READ_CAP {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        let later = chrono::Utc::now() + chrono::Duration::seconds(90);
        h.insert("retry-after", later.to_rfc2822().parse().unwrap());
        let d = retry_after(&h).unwrap().as_secs();
        assert!((85..=90).contains(&d), "{d}");
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    fn rules(policy: FailurePolicy) -> RetryRules {
        RetryRules { max_attempts: 3, policy, base: Duration::from_secs(1), cap: Duration::from_secs(60) }
    }

    #[test]
    fn a_success_finishes_the_delivery_and_shortens_the_lane() {
        let t = transition(&rules(FailurePolicy::Block), &Outcome::Delivered { status: 204 }, 1, 1_000, 1.0);
        assert_eq!((t.state, t.finished_at, t.pending_delta, t.blocks, t.disables), (DeliveryState::Delivered, Some(1_000), -1, false, false));
    }

    #[test]
    fn a_failure_retries_with_exponential_backoff_or_the_receivers_hint() {
        let failed = |hint| Outcome::Failed { status: Some(500), error: "HTTP 500".into(), retry_after: hint };
        let r = rules(FailurePolicy::Block);
        assert_eq!(transition(&r, &failed(None), 1, 0, 1.0).retry_at, Some(1_000));
        assert_eq!(transition(&r, &failed(None), 2, 0, 1.0).retry_at, Some(2_000));
        assert_eq!(transition(&r, &failed(None), 2, 0, 1.1).retry_at, Some(2_200), "jitter scales the delay");
        assert_eq!(transition(&r, &failed(Some(Duration::from_secs(7))), 1, 0, 1.0).retry_at, Some(7_000));
        let t = transition(&r, &Outcome::Refused { error: "private address".into() }, 1, 0, 1.0);
        assert_eq!((t.state, t.pending_delta, t.retry_at), (DeliveryState::Pending, 0, Some(1_000)), "a refusal is retried like a failure");
    }

    #[test]
    fn the_last_attempt_blocks_or_dead_letters_by_policy() {
        let failed = Outcome::Failed { status: None, error: "timeout".into(), retry_after: None };
        let blocked = transition(&rules(FailurePolicy::Block), &failed, 3, 5, 1.0);
        assert_eq!((blocked.state, blocked.blocks, blocked.pending_delta, blocked.retry_at), (DeliveryState::Pending, true, 0, None));
        let dead = transition(&rules(FailurePolicy::DeadLetter), &failed, 3, 5, 1.0);
        assert_eq!((dead.state, dead.blocks, dead.pending_delta, dead.finished_at), (DeliveryState::Dead, false, -1, Some(5)));
    }

    #[test]
    fn gone_disables_and_keeps_the_message_pending() {
        let t = transition(&rules(FailurePolicy::DeadLetter), &Outcome::Gone, 3, 0, 1.0);
        assert_eq!((t.state, t.disables, t.pending_delta, t.retry_at), (DeliveryState::Pending, true, 0, None));
    }

    #[test]
    fn truncation_respects_utf8() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("short", 10), "short");
    }
}
