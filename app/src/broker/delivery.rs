//! The dispatcher: delivers each lane's head message, in order, one request in flight
//! per lane, across any number of processes.
//!
//! A lane is claimed with `FOR UPDATE SKIP LOCKED` (the write gate on SQLite) and leased
//! by pushing its `next_due_at` past the request timeout; the claim also bumps its
//! `lease_version`. Every outcome is written under the lane's row lock and only if the
//! lease version is still ours, so a worker that lost its lease (it stalled, its process
//! died) can never move the lane. A worker that dies mid-request loses nothing: the lease
//! runs out and the head is sent again, with the same `webhook-id`.

use super::service::{self, DEAD, DELIVERED, PENDING, STATE_DISABLED};
use super::signature::signature_header;
use super::store::{attempt, delivery, lane, message, subscriber, subscription, topic};
use super::targets::{GuardedResolver, TargetPolicy};
use crate::error::AppResult;
use crate::platform::backoff::backoff;
use crate::platform::changes;
use crate::platform::db::skip_locked;
use crate::platform::settings::BrokerSettings;
use crate::platform::state::AppState;
use crate::platform::time::{now_ms, to_rfc3339};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

/// Response bytes read at most (the rest is discarded) and kept in the attempt log.
const READ_CAP: usize = 64 * 1024;
const KEEP_BODY: usize = 1024;
/// Consecutive deliveries one claim may make on a lane before giving others a turn.
const BATCH: usize = 100;

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
#[derive(Debug)]
enum Outcome {
    Delivered { status: u16 },
    Failed { status: Option<u16>, error: String, retry_after: Option<Duration> },
    /// 410 Gone: the receiver asks us to stop; the subscription is disabled.
    Gone,
    /// Refused before sending (SSRF policy); retried like any failure in case the
    /// address or the policy changes.
    Refused { error: String },
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
}

impl Dispatcher {
    pub fn new(state: AppState) -> Self {
        let settings = state.settings.broker.clone();
        let policy = Arc::new(TargetPolicy::new(&settings.allowed_targets));
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, out of the resolver's sight.
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(8)
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

    /// Delivers until `shutdown`, `concurrency` lanes at a time.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        tracing::info!(concurrency = self.settings.concurrency, "webhook dispatcher started");
        while !*shutdown.borrow() {
            let free = permits.available_permits();
            let mut full = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok(lanes) => {
                        full = lanes.len() == free;
                        for claimed in lanes {
                            let permit = permits.clone().acquire_owned().await.expect("semaphore open");
                            let me = self.clone();
                            tokio::spawn(async move {
                                me.work_lane(claimed).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(err) => tracing::warn!(error = %err.message, "claiming lanes failed; will retry"),
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown.changed() => {}
            }
        }
        // In-flight requests finish (bounded by the timeout); their leases cover a hard stop.
        let _ = tokio::time::timeout(self.settings.timeout + Duration::from_secs(5), permits.acquire_many(self.settings.concurrency as u32)).await;
        tracing::info!("webhook dispatcher stopped");
    }

    /// Delivers everything that is due now, lane by lane, and returns how many lanes it
    /// worked. Tests and one-shot commands use it instead of the loop.
    pub async fn run_due(&self) -> AppResult<usize> {
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

    #[tracing::instrument(skip(self), err(Display))]
    async fn claim(&self, limit: usize) -> AppResult<Vec<Claimed>> {
        let db = &self.state.db;
        let txn = db.write_txn().await?;
        let now = now_ms();
        let due = lane::Entity::find()
            .filter(lane::Column::NextDueAt.lte(now))
            .order_by_asc(lane::Column::NextDueAt)
            .limit(limit as u64);
        let lanes = skip_locked(due, db.backend()).all(&*txn).await?;
        let mut claimed = Vec::with_capacity(lanes.len());
        for l in lanes {
            lane::Entity::update_many()
                .col_expr(lane::Column::NextDueAt, Expr::value(now + self.lease()))
                .col_expr(lane::Column::LeaseVersion, Expr::value(l.lease_version + 1))
                .filter(lane::Column::Id.eq(l.id))
                .exec(&*txn)
                .await?;
            claimed.push(Claimed { id: l.id, lease_version: l.lease_version + 1 });
        }
        txn.commit().await?;
        Ok(claimed)
    }

    /// Delivers a claimed lane's heads in order until it is empty, waiting on a retry,
    /// inactive, or has had its turn.
    #[tracing::instrument(skip(self, claimed), fields(lane = claimed.id))]
    async fn work_lane(&self, claimed: Claimed) {
        if let Err(err) = self.deliver_heads(&claimed).await {
            // The lease runs out and the lane is claimed again.
            tracing::warn!(error = %err.message, "lane delivery interrupted");
        }
    }

    async fn deliver_heads(&self, claimed: &Claimed) -> AppResult<()> {
        let db = &self.state.db;
        let Some(l) = lane::Entity::find_by_id(claimed.id).one(&db.conn).await? else { return Ok(()) };
        let Some(sub) = subscription::Entity::find_by_id(l.subscription_id).one(&db.conn).await? else { return Ok(()) };
        let Some(target) = subscriber::Entity::find_by_id(l.subscriber_id).one(&db.conn).await? else { return Ok(()) };
        let topic_name = topic::Entity::find_by_id(l.topic_id).one(&db.conn).await?.map(|t| t.name).unwrap_or_default();
        for turn in 1..=BATCH {
            let head = delivery::Entity::find()
                .filter(delivery::Column::LaneId.eq(l.id))
                .filter(delivery::Column::State.eq(PENDING))
                .order_by_asc(delivery::Column::Id)
                .one(&db.conn)
                .await?;
            let now = now_ms();
            let head = match head {
                Some(h) if l.active && h.next_attempt_at <= now => h,
                // Empty, inactive, or the head waits for its retry: release the lease.
                other => {
                    let due = other.map(|h| h.next_attempt_at);
                    return db.retrying(|| self.release(claimed, due)).await;
                }
            };
            let Some(msg) = message::Entity::find_by_id(head.message_id).one(&db.conn).await? else {
                return db.retrying(|| self.release(claimed, None)).await;
            };
            let attempted = self.attempt(&target, &topic_name, &msg).await;
            // A deadlock rolls the whole outcome back, so recording it again is safe.
            let keep_going = db.retrying(|| self.record(claimed, &sub, &head, &attempted, turn < BATCH)).await?;
            if !keep_going {
                return Ok(());
            }
        }
        Ok(())
    }

    /// One signed POST of the message to the subscriber's endpoint.
    async fn attempt(&self, target: &subscriber::Model, topic_name: &str, msg: &message::Model) -> Attempted {
        let started_at = now_ms();
        let clock = Instant::now();
        let msg_id = format!("msg_{}", msg.id);
        // Standard Webhooks envelope: {"type", "timestamp", "data"}; data is the payload as published.
        let body = format!(
            r#"{{"type":{},"timestamp":{},"data":{}}}"#,
            serde_json::Value::from(topic_name),
            serde_json::Value::from(to_rfc3339(msg.created_at)),
            msg.payload
        );
        let timestamp = started_at / 1000;
        let secrets = match service::signing_secrets(&self.state.sealer, target, started_at) {
            Ok(secrets) => secrets,
            Err(_) => {
                // Logged where it failed; retried like any failure until the key is fixed.
                let error = "the signing secret cannot be opened with SB_SECRET_KEY".to_owned();
                return Attempted { outcome: Outcome::Refused { error }, started_at, duration_ms: 0, body: None };
            }
        };
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let signature = signature_header(&secrets, &msg_id, timestamp, body.as_bytes());
        let outcome = match self.policy.check_url(&target.url, "url") {
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

    /// Writes an attempt's outcome under the lane lock. Returns whether this worker
    /// should go on with the lane's next head.
    async fn record(
        &self,
        claimed: &Claimed,
        sub: &subscription::Model,
        head: &delivery::Model,
        attempted: &Attempted,
        more_turns: bool,
    ) -> AppResult<bool> {
        let db = &self.state.db;
        let txn = db.write_txn().await?;
        let l = service::lock_lane(&*txn, claimed.id).await?;
        let n = head.attempts + 1;
        let (status, error) = match &attempted.outcome {
            Outcome::Delivered { status } => (Some(*status as i32), None),
            Outcome::Failed { status, error, .. } => (status.map(i32::from), Some(error.clone())),
            Outcome::Gone => (Some(410), Some("HTTP 410: the receiver asked to stop".to_owned())),
            Outcome::Refused { error } => (None, Some(error.clone())),
        };
        let log = attempt::ActiveModel {
            delivery_id: Set(head.id),
            attempt: Set(n),
            started_at: Set(attempted.started_at),
            duration_ms: Set(attempted.duration_ms),
            status_code: Set(status),
            error: Set(error.as_deref().map(|e| truncate(e, 500))),
            response_body: Set(attempted.body.as_deref().map(|b| truncate(b, KEEP_BODY))),
            worker: Set(self.worker.clone()),
            ..Default::default()
        };
        attempt::Entity::insert(log).exec_without_returning(&*txn).await?;
        if l.lease_version != claimed.lease_version {
            // Another worker took the lane over; the attempt is logged, nothing else moves.
            txn.commit().await?;
            return Ok(false);
        }
        let now = now_ms();
        let outcome_label;
        let mut pending = l.pending;
        let mut blocked = l.blocked;
        let mut active = l.active;
        let mut retry_at = None;
        let (state, finished) = match &attempted.outcome {
            Outcome::Delivered { .. } => {
                outcome_label = "delivered";
                pending -= 1;
                (DELIVERED, Some(now))
            }
            Outcome::Gone => {
                outcome_label = "gone";
                active = false;
                subscription::Entity::update_many()
                    .col_expr(subscription::Column::State, Expr::value(STATE_DISABLED))
                    .col_expr(subscription::Column::DisabledReason, Expr::value("the endpoint answered 410 Gone"))
                    .filter(subscription::Column::Id.eq(sub.id))
                    .exec(&*txn)
                    .await?;
                service::set_lanes_active(&*txn, sub.id, false).await?;
                (PENDING, None)
            }
            Outcome::Failed { retry_after: hint, .. } => {
                outcome_label = "failed";
                self.after_failure(sub, n, *hint, &mut pending, &mut blocked, &mut retry_at)
            }
            Outcome::Refused { .. } => {
                outcome_label = "refused";
                self.after_failure(sub, n, None, &mut pending, &mut blocked, &mut retry_at)
            }
        };
        delivery::Entity::update_many()
            .col_expr(delivery::Column::State, Expr::value(state))
            .col_expr(delivery::Column::Attempts, Expr::value(n))
            .col_expr(delivery::Column::LastStatus, Expr::value(status))
            .col_expr(delivery::Column::LastError, Expr::value(error.as_deref().map(|e| truncate(e, 500))))
            .col_expr(delivery::Column::FinishedAt, Expr::value(finished))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(retry_at.unwrap_or(head.next_attempt_at)))
            .filter(delivery::Column::Id.eq(head.id))
            .filter(delivery::Column::State.eq(PENDING))
            .exec(&*txn)
            .await?;
        let keep_going = state == DELIVERED && more_turns && pending > 0 && active && !blocked;
        let next_due = if keep_going {
            Some(now + self.lease())
        } else if !active || blocked || pending == 0 {
            None
        } else {
            Some(retry_at.unwrap_or(now))
        };
        lane::Entity::update_many()
            .col_expr(lane::Column::Pending, Expr::value(pending))
            .col_expr(lane::Column::Blocked, Expr::value(blocked))
            .col_expr(lane::Column::NextDueAt, Expr::value(next_due))
            .filter(lane::Column::Id.eq(l.id))
            .exec(&*txn)
            .await?;
        let change = serde_json::json!({"delivery": head.id, "state": state, "attempts": n});
        changes::record(&*txn, &service::channel(head.subscriber_id), &change).await?;
        txn.commit().await?;
        metrics::counter!("broker_deliveries_total", "outcome" => outcome_label).increment(1);
        Ok(keep_going)
    }

    /// After a failed attempt: schedule the retry, or apply the subscription's policy when
    /// the attempts are used up. Returns the delivery's new state and finish time.
    fn after_failure(
        &self,
        sub: &subscription::Model,
        attempts: i32,
        retry_after: Option<Duration>,
        pending: &mut i64,
        blocked: &mut bool,
        retry_at: &mut Option<i64>,
    ) -> (&'static str, Option<i64>) {
        let now = now_ms();
        if attempts >= sub.max_attempts {
            if sub.policy == "dead_letter" {
                *pending -= 1;
                return (DEAD, Some(now));
            }
            *blocked = true;
            return (PENDING, None);
        }
        let base = sub.retry_base_ms.map(|ms| Duration::from_millis(ms as u64)).unwrap_or(self.settings.retry_base);
        let cap = sub.retry_max_ms.map(|ms| Duration::from_millis(ms as u64)).unwrap_or(self.settings.retry_max);
        let delay = match retry_after {
            // The receiver said when; honour it, within a day.
            Some(hint) => hint.min(Duration::from_secs(86_400)),
            None => backoff(attempts as u32, base, cap),
        };
        *retry_at = Some(now + delay.as_millis() as i64);
        (PENDING, None)
    }

    async fn release(&self, claimed: &Claimed, head_due: Option<i64>) -> AppResult<()> {
        let db = &self.state.db;
        let txn = db.write_txn().await?;
        let l = service::lock_lane(&*txn, claimed.id).await?;
        if l.lease_version == claimed.lease_version {
            let next = match head_due {
                Some(at) if l.active && !l.blocked && l.pending > 0 => Some(at.max(now_ms())),
                _ => None,
            };
            lane::Entity::update_many()
                .col_expr(lane::Column::NextDueAt, Expr::value(next))
                .filter(lane::Column::Id.eq(l.id))
                .exec(&*txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
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
    Some(Duration::from_millis(ms.max(0) as u64))
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

    #[test]
    fn truncation_respects_utf8() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("short", 10), "short");
    }
}
