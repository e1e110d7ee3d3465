//! The durable job runner against real databases.

use crate::support::{eventually, test_settings, Backend, TestDb};
use app::platform::jobs::{self, JobRegistry, JobRunner};
use app::platform::state::AppState;
use app::platform::time::Clock;
use sea_orm::{ConnectionTrait, EntityTrait, TransactionTrait};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn state_for(db: &TestDb, objects: &tempfile::TempDir) -> AppState {
    let settings = test_settings(db, objects.path());
    server::startup::open_state(settings).await.expect("state")
}

/// A registry whose `record` job notes (job id, attempt) and whose `flaky` job fails
/// until its third attempt.
fn recording_registry(log: Arc<Mutex<Vec<(i64, i32)>>>) -> JobRegistry {
    let mut registry = JobRegistry::default();
    let record_log = log.clone();
    registry.register("test.record", Duration::from_secs(30), 5, move |_state, job| {
        let log = record_log.clone();
        async move {
            log.lock().unwrap().push((job.id, job.attempt));
            Ok(())
        }
    });
    registry.register("test.flaky", Duration::from_secs(30), 3, move |_state, job| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push((job.id, job.attempt));
            anyhow::ensure!(job.attempt >= 3, "attempt {} fails on purpose", job.attempt);
            Ok(())
        }
    });
    registry
}

async fn job_row(state: &AppState, id: i64) -> Option<jobs::entity::Model> {
    jobs::entity::Entity::find_by_id(id).one(&state.db.conn).await.unwrap()
}

/// Make a job due now (instead of waiting out its backoff).
async fn make_due(state: &AppState, id: i64) {
    state
        .db
        .execute_unprepared(&format!("UPDATE jobs SET run_at = 0 WHERE id = {id}"))
        .await
        .unwrap();
}

async fn enqueued_jobs_commit_with_their_transaction(backend: Backend) {
    let (db, dir) = (TestDb::new(backend).await, tempfile::tempdir().unwrap());
    let state = state_for(&db, &dir).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let runner = JobRunner::new(state.clone(), recording_registry(log.clone()));

    let txn = state.db.begin().await.unwrap();
    jobs::enqueue(&txn, "test.record", &serde_json::json!({"n": 1})).await.unwrap();
    txn.rollback().await.unwrap();
    let txn = state.db.begin().await.unwrap();
    let kept = jobs::enqueue(&txn, "test.record", &serde_json::json!({"n": 2})).await.unwrap();
    txn.commit().await.unwrap();

    assert_eq!(runner.run_due().await.unwrap(), 1, "only the committed job exists");
    assert_eq!(*log.lock().unwrap(), vec![(kept, 1)]);
    assert!(job_row(&state, kept).await.is_none(), "a finished one-off job is removed");
    assert_eq!(runner.run_due().await.unwrap(), 0, "and never runs again");
}

async fn failing_jobs_back_off_then_die(backend: Backend) {
    let (db, dir) = (TestDb::new(backend).await, tempfile::tempdir().unwrap());
    let state = state_for(&db, &dir).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let runner = JobRunner::new(state.clone(), recording_registry(log.clone()));

    let id = jobs::enqueue(&state.db.conn, "test.flaky", &()).await.unwrap();
    assert_eq!(runner.run_due().await.unwrap(), 1);
    let row = job_row(&state, id).await.expect("failed job stays queued");
    assert_eq!((row.state.as_str(), row.attempts), ("queued", 1));
    assert!(row.last_error.as_deref().unwrap().contains("attempt 1 fails"));
    let delay = row.run_at - app::platform::time::now_ms();
    assert!((500..=1200).contains(&delay), "first retry ~1 s later, got {delay} ms");
    assert_eq!(runner.run_due().await.unwrap(), 0, "not due during its backoff");

    make_due(&state, id).await;
    runner.run_due().await.unwrap();
    make_due(&state, id).await;
    runner.run_due().await.unwrap();
    assert_eq!(*log.lock().unwrap(), vec![(id, 1), (id, 2), (id, 3)]);
    assert!(job_row(&state, id).await.is_none(), "succeeded on the third attempt");

    // A job that keeps failing is parked as dead after max_attempts, not retried forever.
    let mut registry = JobRegistry::default();
    registry.register("test.hopeless", Duration::from_secs(30), 2, |_, _| async { anyhow::bail!("never works") });
    let runner = JobRunner::new(state.clone(), registry);
    let id = jobs::enqueue(&state.db.conn, "test.hopeless", &()).await.unwrap();
    runner.run_due().await.unwrap();
    make_due(&state, id).await;
    runner.run_due().await.unwrap();
    let row = job_row(&state, id).await.unwrap();
    assert_eq!((row.state.as_str(), row.attempts), ("dead", 2));
    make_due(&state, id).await;
    assert_eq!(runner.run_due().await.unwrap(), 0, "dead jobs are not claimed");
    assert_eq!(jobs::dead_jobs(&state.db, 10).await.unwrap().len(), 1);
}

async fn a_crashed_runners_job_runs_again_after_its_lease(backend: Backend) {
    let (db, dir) = (TestDb::new(backend).await, tempfile::tempdir().unwrap());
    let state = state_for(&db, &dir).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut registry = recording_registry(log.clone());
    let l = log.clone();
    registry.register("test.short_lease", Duration::from_millis(300), 5, move |_, job| {
        let l = l.clone();
        async move {
            l.lock().unwrap().push((job.id, job.attempt));
            Ok(())
        }
    });
    // Both runners read one hand-moved clock: the lease runs out exactly when the test
    // says, however slow the machine is.
    let clock = Clock::manual(app::platform::time::now_ms());
    let doomed = JobRunner::new(state.clone(), registry.clone()).with_clock(clock.clone());
    let survivor = JobRunner::new(state.clone(), registry).with_clock(clock.clone());

    let id = jobs::enqueue_at(&state.db.conn, "test.short_lease", &(), clock.now_ms()).await.unwrap();
    let claimed = doomed.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    drop(claimed); // the runner dies holding the lease

    assert_eq!(survivor.run_due().await.unwrap(), 0, "leased to the dead runner for now");
    clock.advance(Duration::from_millis(299));
    assert_eq!(survivor.run_due().await.unwrap(), 0, "still leased 1 ms before the lease ends");
    clock.advance(Duration::from_millis(1));
    assert_eq!(survivor.run_due().await.unwrap(), 1, "the lease ran out");
    assert_eq!(*log.lock().unwrap(), vec![(id, 2)], "the crashed run counts as attempt 1");
}

async fn periodic_jobs_reschedule_themselves(backend: Backend) {
    let (db, dir) = (TestDb::new(backend).await, tempfile::tempdir().unwrap());
    let state = state_for(&db, &dir).await;
    let runs = Arc::new(Mutex::new(0));
    let r = runs.clone();
    let mut registry = JobRegistry::default();
    registry.periodic("test.tick", Duration::from_secs(3600), Duration::from_secs(30), move |_, _| {
        let r = r.clone();
        async move {
            *r.lock().unwrap() += 1;
            Ok(())
        }
    });
    let runner = JobRunner::new(state.clone(), registry.clone());
    runner.seed_periodic().await.unwrap();
    JobRunner::new(state.clone(), registry).seed_periodic().await.unwrap(); // a second process starting
    assert_eq!(runner.run_due().await.unwrap(), 1, "one row however many processes seed it");
    assert_eq!(runner.run_due().await.unwrap(), 0, "next run in an hour");
    assert_eq!(*runs.lock().unwrap(), 1);
    let row = state
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            state.db.backend(),
            "SELECT run_at, state FROM jobs WHERE kind = 'test.tick'".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let run_at: i64 = row.try_get("", "run_at").unwrap();
    let ahead = run_at - app::platform::time::now_ms();
    assert!((3_500_000..=3_600_000).contains(&ahead), "rescheduled an interval ahead: {ahead}");

    // Restarting with a shorter interval takes effect at once, not after the old one.
    let mut shorter = JobRegistry::default();
    shorter.periodic("test.tick", Duration::from_secs(1), Duration::from_secs(30), |_, _| async { Ok(()) });
    JobRunner::new(state.clone(), shorter).seed_periodic().await.unwrap();
    let row = jobs::entity::Entity::find().one(&state.db.conn).await.unwrap().unwrap();
    let ahead = row.run_at - app::platform::time::now_ms();
    assert!(ahead <= 1000 && row.interval_ms == Some(1000), "run within the new interval: {ahead} ms");
}

/// A job queued by key is queued once, however often it is asked for, and one that died
/// is queued again (fresh attempts) the next time it is asked for.
async fn a_keyed_job_is_queued_once_and_a_dead_one_revived(backend: Backend) {
    use jobs::entity::{Column, Entity};
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    let (db, dir) = (TestDb::new(backend).await, tempfile::tempdir().unwrap());
    let state = state_for(&db, &dir).await;
    let conn = &state.db.conn;
    for _ in 0..3 {
        jobs::enqueue_unique(conn, "test.keyed", &serde_json::json!({}), "key:1").await.unwrap();
    }
    assert_eq!(Entity::find().filter(Column::Kind.eq("test.keyed")).count(conn).await.unwrap(), 1);
    Entity::update_many()
        .col_expr(Column::State, sea_orm::sea_query::Expr::value(jobs::JobState::Dead))
        .col_expr(Column::Attempts, sea_orm::sea_query::Expr::value(8))
        .exec(conn)
        .await
        .unwrap();
    jobs::enqueue_unique(conn, "test.keyed", &serde_json::json!({}), "key:1").await.unwrap();
    let rows = Entity::find().filter(Column::Kind.eq("test.keyed")).all(conn).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].state, rows[0].attempts), (jobs::JobState::Queued, 0), "revived with fresh attempts");
}

both_backends!(
    a_keyed_job_is_queued_once_and_a_dead_one_revived,
    enqueued_jobs_commit_with_their_transaction,
    failing_jobs_back_off_then_die,
    a_crashed_runners_job_runs_again_after_its_lease,
    periodic_jobs_reschedule_themselves,
);

/// Two runners (as two server processes would) on one MariaDB database: every job runs
/// exactly once, none is lost, and SKIP LOCKED keeps them from waiting on each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_on_one_mariadb_run_each_job_exactly_once() {
    let db = TestDb::new(Backend::MariaDb).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let state_a = state_for(&db, &dir_a).await;
    let state_b = state_for(&db, &dir_b).await; // its own connection pool

    let runs: Arc<Mutex<HashMap<i64, Vec<&'static str>>>> = Default::default();
    let registry = |who: &'static str| {
        let runs = runs.clone();
        let mut r = JobRegistry::default();
        r.register("test.count", Duration::from_secs(30), 5, move |_, job| {
            let runs = runs.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                runs.lock().unwrap().entry(job.id).or_default().push(who);
                Ok(())
            }
        });
        r
    };

    const N: usize = 300;
    let mut ids = Vec::with_capacity(N);
    for n in 0..N {
        ids.push(jobs::enqueue(&state_a.db.conn, "test.count", &n).await.unwrap());
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let a = tokio::spawn(JobRunner::new(state_a.clone(), registry("a")).with_workers(4).run(stop_rx.clone()));
    let b = tokio::spawn(JobRunner::new(state_b.clone(), registry("b")).with_workers(4).run(stop_rx));

    eventually(Duration::from_secs(60), "all jobs to run", || {
        let done = runs.lock().unwrap().len();
        async move { (done == N).then_some(()) }
    })
    .await;
    stop_tx.send(true).unwrap();
    a.await.unwrap();
    b.await.unwrap();

    let runs = runs.lock().unwrap();
    for id in &ids {
        assert_eq!(runs[id].len(), 1, "job {id} ran {:?}", runs[id]);
    }
    let by_a = runs.values().filter(|w| w[0] == "a").count();
    assert!(by_a > 0 && by_a < N, "both runners took work: a ran {by_a} of {N}");
    assert_eq!(jobs::queue_depth(&state_a.db).await.unwrap(), 0);
}
