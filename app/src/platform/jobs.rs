//! Durable background jobs.
//!
//! A job is a row in `jobs`. Business code enqueues it inside the transaction of the
//! write that causes it, so the job exists if and only if the write committed. Runners
//! claim due rows with `SELECT … FOR UPDATE SKIP LOCKED` (MySQL; on SQLite the write gate
//! serialises claimers) and lease them by pushing `run_at` into the future: if the runner
//! dies, the lease runs out and another runner takes the job again. A running job renews
//! its lease every third of it, so a lease can be short (a crash is noticed soon) while a
//! job runs as long as its `max_runtime`. Completion is fenced
//! by `(locked_by, attempts)`, so a runner whose lease was taken over cannot clobber the
//! newer attempt. Failures retry with exponential backoff; periodic jobs are ordinary
//! rows that reschedule themselves instead of being deleted.

use super::backoff::backoff;
use super::db::{skip_locked, Db};
use super::state::AppState;
use super::time::{now_ms, Clock};
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub kind: String,
        pub payload: String,
        pub state: super::JobState,
        pub run_at: i64,
        pub attempts: i32,
        pub max_attempts: i32,
        pub locked_by: Option<String>,
        pub last_error: Option<String>,
        pub unique_key: Option<String>,
        pub interval_ms: Option<i64>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity as JobRow};

crate::named_enum! {
    /// Where a job stands. A running job is a queued one whose `run_at` (its lease) lies
    /// ahead and whose `locked_by` names the runner; a finished one-off job is deleted.
    pub enum JobState {
        Queued = "queued",
        /// Used up its attempts; kept for the operator.
        Dead = "dead",
    }
}

/// A job as its handler sees it.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    /// 1 on the first run, counting runs that crashed.
    pub attempt: i32,
}

impl Job {
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        Ok(serde_json::from_value(self.payload.clone())?)
    }
}

pub type Handler = Arc<dyn Fn(AppState, Job) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

#[derive(Clone)]
struct Kind {
    handler: Handler,
    lease: Duration,
    /// A run taking longer is abandoned as failed (by default: the lease).
    max_runtime: Duration,
    max_attempts: i32,
    every: Option<Duration>,
}

/// The job kinds this process knows how to run. Capabilities register theirs at start-up.
#[derive(Clone, Default)]
pub struct JobRegistry {
    kinds: HashMap<&'static str, Kind>,
}

impl JobRegistry {
    /// A one-off job kind, retried up to `max_attempts` times, leased for `lease`.
    pub fn register<F, Fut>(&mut self, name: &'static str, lease: Duration, max_attempts: i32, f: F) -> &mut Self
    where
        F: Fn(AppState, Job) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |state, job| Box::pin(f(state, job)));
        self.kinds.insert(name, Kind { handler, lease, max_runtime: lease, max_attempts, every: None });
        self
    }

    /// Lets runs of `name` take up to `max_runtime` (their lease is renewed meanwhile).
    pub fn max_runtime(&mut self, name: &'static str, max_runtime: Duration) -> &mut Self {
        self.kinds.get_mut(name).expect("registered before").max_runtime = max_runtime;
        self
    }

    /// A job that runs every `every`, on one runner at a time across all processes.
    pub fn periodic<F, Fut>(&mut self, name: &'static str, every: Duration, lease: Duration, f: F) -> &mut Self
    where
        F: Fn(AppState, Job) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.register(name, lease, i32::MAX, f);
        self.kinds.get_mut(name).expect("just registered").every = Some(every);
        self
    }

    fn names(&self) -> Vec<String> {
        self.kinds.keys().map(|k| k.to_string()).collect()
    }
}

/// Enqueues a job on `conn` — pass the business write's transaction so both commit or
/// neither does.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, kind: &str, payload: &impl Serialize) -> Result<i64, DbErr> {
    enqueue_at(conn, kind, payload, now_ms()).await
}

pub async fn enqueue_at<C: ConnectionTrait>(
    conn: &C,
    kind: &str,
    payload: &impl Serialize,
    run_at: i64,
) -> Result<i64, DbErr> {
    let payload = serde_json::to_string(payload).map_err(|e| DbErr::Json(e.to_string()))?;
    let row = ActiveModel {
        kind: Set(kind.to_owned()),
        payload: Set(payload),
        state: Set(JobState::Queued),
        run_at: Set(run_at),
        attempts: Set(0),
        max_attempts: Set(8),
        locked_by: Set(None),
        last_error: Set(None),
        unique_key: Set(None),
        interval_ms: Set(None),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    Ok(JobRow::insert(row).exec(conn).await?.last_insert_id)
}

/// Queues a job unless one with `key` is queued or running already (a finished one-off
/// job is deleted, so its key is free again): two processes starting at once, or a
/// restart before the first ran, queue it once. A dead one with that key is queued again
/// with fresh attempts: a failure at one start does not stop it for good.
pub async fn enqueue_unique<C: ConnectionTrait>(conn: &C, kind: &str, payload: &impl Serialize, key: &str) -> Result<(), DbErr> {
    let payload = serde_json::to_string(payload).map_err(|e| DbErr::Json(e.to_string()))?;
    let row = ActiveModel {
        kind: Set(kind.to_owned()),
        payload: Set(payload),
        state: Set(JobState::Queued),
        run_at: Set(now_ms()),
        attempts: Set(0),
        max_attempts: Set(8),
        locked_by: Set(None),
        last_error: Set(None),
        unique_key: Set(Some(key.to_owned())),
        interval_ms: Set(None),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    // Queued or running already: left as it is. Dead: revived.
    let dead = || Expr::col(Column::State).eq(JobState::Dead);
    let revive = OnConflict::column(Column::UniqueKey)
        .value(Column::Attempts, Expr::case(dead(), 0).finally(Expr::col(Column::Attempts)))
        .value(Column::RunAt, Expr::case(dead(), now_ms()).finally(Expr::col(Column::RunAt)))
        .value(Column::State, Expr::case(dead(), JobState::Queued).finally(Expr::col(Column::State)))
        .to_owned();
    JobRow::insert(row).on_conflict(revive).exec_without_returning(conn).await?;
    Ok(())
}

/// Due jobs waiting for a runner (the `jobs_queue_depth` gauge). Counted on the
/// `(state, run_at)` index.
pub async fn queue_depth(db: &Db) -> Result<u64, DbErr> {
    JobRow::find().filter(Column::State.eq(JobState::Queued)).filter(Column::RunAt.lte(now_ms())).count(&db.conn).await
}

/// Jobs that exhausted their attempts, newest first.
pub async fn dead_jobs(db: &Db, limit: u64) -> Result<Vec<entity::Model>, DbErr> {
    JobRow::find().filter(Column::State.eq(JobState::Dead)).order_by_desc(Column::RunAt).limit(limit).all(&db.conn).await
}

pub struct JobRunner {
    state: AppState,
    registry: Arc<JobRegistry>,
    worker_id: String,
    workers: usize,
    /// What claiming and seeding take as "now" (leases are judged by it).
    clock: Clock,
}

pub struct Claimed {
    pub job: Job,
    kind: Kind,
}

impl JobRunner {
    pub fn new(state: AppState, registry: JobRegistry) -> Self {
        let worker_id = format!("{}-{:08x}", hostname(), rand::random::<u32>());
        let workers = state.settings.job_workers;
        Self { state, registry: Arc::new(registry), worker_id, workers, clock: Clock::System }
    }

    /// Claims and seeds by `clock` (tests pass a manual one to say when a lease runs
    /// out). Enqueueing, lease renewal and outcomes keep the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// How many jobs this runner executes at once (default `SB_JOB_WORKERS`).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Makes sure each periodic kind has its one row; updates the interval if it changed.
    #[tracing::instrument(skip(self), err)]
    pub async fn seed_periodic(&self) -> Result<(), DbErr> {
        for (name, kind) in &self.registry.kinds {
            let Some(every) = kind.every else { continue };
            let row = ActiveModel {
                kind: Set(name.to_string()),
                payload: Set("{}".into()),
                state: Set(JobState::Queued),
                run_at: Set(self.clock.now_ms()),
                attempts: Set(0),
                max_attempts: Set(i32::MAX),
                locked_by: Set(None),
                last_error: Set(None),
                unique_key: Set(Some(format!("periodic:{name}"))),
                interval_ms: Set(Some(every.as_millis() as i64)),
                created_at: Set(self.clock.now_ms()),
                ..Default::default()
            };
            // Already there: take the (possibly new) interval, and run no later than one
            // new interval from now (a shortened interval takes effect at once).
            let latest = self.clock.now_ms() + every.as_millis() as i64;
            let run_at = Expr::case(Expr::col(Column::RunAt).gt(latest), latest).finally(Expr::col(Column::RunAt));
            let upsert = OnConflict::column(Column::UniqueKey)
                .update_column(Column::IntervalMs)
                .value(Column::RunAt, run_at)
                .to_owned();
            JobRow::insert(row).on_conflict(upsert).exec_without_returning(&self.state.db.conn).await?;
        }
        Ok(())
    }

    /// Claims up to `limit` due jobs and leases them to this runner. Public so tests can
    /// play a runner that claims and then dies.
    #[tracing::instrument(skip(self), err, fields(worker = %self.worker_id))]
    pub async fn claim(&self, limit: usize) -> crate::error::AppResult<Vec<Claimed>> {
        let db = &self.state.db;
        crate::db_write!(db, |txn| {
            let now = self.clock.now_ms();
            let due = JobRow::find()
                .filter(Column::State.eq(JobState::Queued))
                .filter(Column::RunAt.lte(now))
                .filter(Column::Kind.is_in(self.registry.names()))
                .order_by_asc(Column::RunAt)
                .limit(limit as u64);
            let rows = skip_locked(due, db.backend()).all(&*txn).await?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in rows {
                let kind = self.registry.kinds[row.kind.as_str()].clone();
                JobRow::update_many()
                    .col_expr(Column::RunAt, Expr::value(now + kind.lease.as_millis() as i64))
                    .col_expr(Column::Attempts, Expr::value(row.attempts + 1))
                    .col_expr(Column::LockedBy, Expr::value(self.worker_id.clone()))
                    .filter(Column::Id.eq(row.id))
                    .exec(&*txn)
                    .await?;
                let payload = serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null);
                claimed.push(Claimed {
                    job: Job { id: row.id, kind: row.kind, payload, attempt: row.attempts + 1 },
                    kind,
                });
            }
            Ok(claimed)
        })
    }

    /// Runs one claimed job and records its outcome.
    #[tracing::instrument(skip_all, fields(job.id = claimed.job.id, job.kind = %claimed.job.kind, attempt = claimed.job.attempt))]
    async fn execute(state: AppState, worker_id: String, claimed: Claimed) {
        let Claimed { job, kind } = claimed;
        let run = tokio::spawn((kind.handler)(state.clone(), job.clone()));
        let abort = run.abort_handle();
        let renewal = tokio::spawn(renew_lease(state.db.clone(), worker_id.clone(), job.clone(), kind.lease));
        let outcome = match tokio::time::timeout(kind.max_runtime, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(anyhow::anyhow!("job panicked: {join}")),
            Err(_) => {
                abort.abort();
                Err(anyhow::anyhow!("job exceeded its run time of {:?}", kind.max_runtime))
            }
        };
        renewal.abort();
        let label = if outcome.is_ok() { "ok" } else { "error" };
        metrics::counter!("jobs_completed_total", "kind" => job.kind.clone(), "outcome" => label).increment(1);
        if let Err(err) = &outcome {
            tracing::warn!(error = %format!("{err:#}"), "job failed");
        }
        if let Err(err) = record_outcome(&state.db, &worker_id, &job, &kind, outcome).await {
            // The lease will run out and another runner will retry the job.
            tracing::error!(error = %err, "could not record job outcome");
        }
    }

    /// Claims and runs everything due now, `workers` at a time; returns how many ran.
    /// Used by tests and one-shot subcommands.
    pub async fn run_due(&self) -> crate::error::AppResult<usize> {
        let mut total = 0;
        loop {
            let batch = self.claim(self.workers).await?;
            if batch.is_empty() {
                return Ok(total);
            }
            total += batch.len();
            let runs = batch
                .into_iter()
                .map(|c| Self::execute(self.state.clone(), self.worker_id.clone(), c));
            futures::future::join_all(runs).await;
        }
    }

    /// The runner loop: polls for due jobs until `shutdown` turns true, then waits for the
    /// jobs in flight (their leases cover a hard stop).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.workers));
        let poll = self.state.settings.job_poll;
        tracing::info!(worker = %self.worker_id, workers = self.workers, "job runner started");
        let mut gauge_at = tokio::time::Instant::now();
        while !*shutdown.borrow() {
            let free = permits.available_permits();
            let mut full_batch = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok(batch) => {
                        full_batch = batch.len() == free;
                        for claimed in batch {
                            let permit = permits.clone().acquire_owned().await.expect("semaphore open");
                            let (state, worker) = (self.state.clone(), self.worker_id.clone());
                            tokio::spawn(async move {
                                Self::execute(state, worker, claimed).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "claiming jobs failed; will retry"),
                }
            }
            if gauge_at.elapsed() > Duration::from_secs(5) {
                gauge_at = tokio::time::Instant::now();
                if let Ok(depth) = queue_depth(&self.state.db).await {
                    metrics::gauge!("jobs_queue_depth").set(depth as f64);
                }
            }
            if full_batch {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {}
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), permits.acquire_many(self.workers as u32)).await;
        tracing::info!(worker = %self.worker_id, "job runner stopped");
    }
}

/// The job's row while this runner's claim on it is still the current one: a runner whose
/// lease was taken over matches nothing, so it can neither renew nor record.
fn still_held(job: &Job, worker_id: &str) -> Condition {
    Condition::all()
        .add(Column::Id.eq(job.id))
        .add(Column::LockedBy.eq(worker_id))
        .add(Column::Attempts.eq(job.attempt))
}

/// Pushes the lease of a running job forward every third of it, while this runner still
/// holds it; stops when it no longer does (another runner took over after a stall).
async fn renew_lease(db: Db, worker_id: String, job: Job, lease: Duration) {
    let every = (lease / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        let renewed = JobRow::update_many()
            .col_expr(Column::RunAt, Expr::value(now_ms() + lease.as_millis() as i64))
            .filter(still_held(&job, &worker_id))
            .exec(&db.conn)
            .await;
        match renewed {
            Ok(r) if r.rows_affected == 0 => return,
            Ok(_) => {}
            Err(err) => tracing::warn!(job.id = job.id, error = %err, "could not renew the job's lease"),
        }
    }
}

async fn record_outcome(
    db: &Db,
    worker_id: &str,
    job: &Job,
    kind: &Kind,
    outcome: anyhow::Result<()>,
) -> Result<(), DbErr> {
    let now = now_ms();
    let mine = still_held(job, worker_id);
    let update = JobRow::update_many()
        .col_expr(Column::LockedBy, Expr::value(Option::<String>::None))
        .filter(mine.clone());
    match (outcome, kind.every) {
        (Ok(()), None) => {
            JobRow::delete_many().filter(mine).exec(&db.conn).await?;
        }
        (result, Some(every)) => {
            update
                .col_expr(Column::RunAt, Expr::value(now + every.as_millis() as i64))
                .col_expr(Column::Attempts, Expr::value(0))
                .col_expr(Column::LastError, Expr::value(result.err().map(|e| format!("{e:#}"))))
                .exec(&db.conn)
                .await?;
        }
        (Err(err), None) => {
            let message = Some(format!("{err:#}"));
            let update = if job.attempt >= kind.max_attempts {
                tracing::error!(job.id = job.id, "job exhausted its attempts; parked as dead");
                update.col_expr(Column::State, Expr::value(JobState::Dead))
            } else {
                let delay = backoff(job.attempt as u32, Duration::from_secs(1), Duration::from_secs(600));
                update.col_expr(Column::RunAt, Expr::value(now + delay.as_millis() as i64))
            };
            update.col_expr(Column::LastError, Expr::value(message)).exec(&db.conn).await?;
        }
    }
    Ok(())
}

/// This machine's name (for worker ids in logs and tables).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}
