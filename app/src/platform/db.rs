//! The database handle: one pool, SQLite or MySQL/MariaDB chosen by `DATABASE_URL`.

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use super::events::EventOutlet;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

#[derive(Clone)]
pub struct Db {
    pub conn: DatabaseConnection,
    /// SQLite allows one writer; a transaction that reads and then writes fails outright
    /// (SQLITE_BUSY_SNAPSHOT) when another writer committed in between, whatever the busy
    /// timeout. Serialising write transactions inside the (single) process avoids that.
    /// MySQL has row locks and needs no gate.
    write_gate: Option<Arc<Mutex<()>>>,
    wakers: Arc<Wakers>,
    /// Where transactions publish their domain events (the broker, once installed).
    outlet: Arc<std::sync::OnceLock<Arc<dyn EventOutlet>>>,
    /// Whether `INSERT … RETURNING` works: SQLite (≥ 3.35, bundled) and MariaDB ≥ 10.5,
    /// not MySQL.
    returning: bool,
}

/// Named in-process signals that a transaction fires when it commits: a background
/// worker (the broker's sequencer, the dispatcher, the meetings folder) sleeps on one
/// instead of polling, and wakes as soon as the rows it works on are visible. Other
/// processes' workers still poll, slowly, for what this process does not see.
#[derive(Default)]
struct Wakers(std::sync::Mutex<std::collections::HashMap<&'static str, Arc<Notify>>>);

impl Wakers {
    fn get(&self, name: &'static str) -> Arc<Notify> {
        self.0.lock().expect("wakers lock").entry(name).or_default().clone()
    }
}

/// A write transaction; on SQLite it also holds the process-wide write gate.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _gate: Option<OwnedMutexGuard<()>>,
    wakers: Arc<Wakers>,
    wake: std::sync::Mutex<Vec<&'static str>>,
    outlet: Option<Arc<dyn EventOutlet>>,
    after: std::sync::Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

impl Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    /// Commits, then fires the wakers the transaction asked for: only then can the
    /// woken worker see the rows.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await?;
        drop(self._gate);
        for name in self.wake.into_inner().expect("wake list lock") {
            // `notify_one` keeps a permit when the worker is busy, so no wake-up is lost.
            self.wakers.get(name).notify_one();
        }
        for done in self.after.into_inner().expect("after-commit lock") {
            done();
        }
        Ok(())
    }

    /// Runs `done` once this transaction has committed (never when it rolls back or is
    /// run again after a conflict): counters of what was really written.
    pub fn after_commit(&self, done: impl FnOnce() + Send + 'static) {
        self.after.lock().expect("after-commit lock").push(Box::new(done));
    }

    /// Publishes a domain event in this transaction (see [`EventOutlet`]).
    pub async fn publish(&self, topic: &str, payload: &impl serde::Serialize) -> Result<(), crate::error::AppError> {
        use crate::error::OrInternal;
        let payload = serde_json::to_value(payload).or_internal("encoding a domain event")?;
        self.publish_all(topic, std::slice::from_ref(&payload)).await
    }

    /// Publishes several events on one topic in this transaction, in this order.
    pub async fn publish_all(&self, topic: &str, payloads: &[serde_json::Value]) -> Result<(), crate::error::AppError> {
        let outlet = self.outlet.as_ref().ok_or_else(|| {
            crate::error::AppError::internal_because(format!("no event outlet is installed on this database; {topic} cannot be published"))
        })?;
        outlet.publish(self, topic, payloads).await
    }

    /// Wakes the worker sleeping on `name` once this transaction has committed.
    pub fn wake_after_commit(&self, name: &'static str) {
        let mut wake = self.wake.lock().expect("wake list lock");
        if !wake.contains(&name) {
            wake.push(name);
        }
    }
}

/// How the pool is sized (`SB_DB_MAX_CONNECTIONS`).
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolSettings {
    /// Connections at most; `None`: 8 on SQLite (one writer at a time anyway), 32 on
    /// MySQL (enough for the request handlers and every background worker at once).
    pub max_connections: Option<u32>,
}

impl Db {
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        Self::connect_with(url, PoolSettings::default()).await
    }

    /// Opens the pool and warms it: every connection is made (and set up) at start-up,
    /// so the first burst of requests does not pay for connecting.
    #[tracing::instrument(skip_all, fields(backend, connections))]
    pub async fn connect_with(url: &str, pool: PoolSettings) -> Result<Self, DbErr> {
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            create_sqlite_parent_dir(url);
        }
        let max = pool.max_connections.unwrap_or(if sqlite { 8 } else { 32 }).max(2);
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(max)
            .min_connections(max)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every connection it hands out by default: one more round trip per
            // statement outside a transaction. Only one idle long enough to have been
            // dropped by the server is checked.
            .test_before_acquire_if_idle_for(Duration::from_secs(60))
            .sqlx_logging(false);
        if sqlite {
            opts.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        } else {
            // READ COMMITTED for the whole session, once per connection: locking reads then
            // lock only the rows they return, never the gaps between them, which is what
            // queue-like tables (claims with SKIP LOCKED, insert-if-missing) need to stay
            // free of gap-lock deadlocks. Set per transaction it costs a round trip each.
            opts.map_sqlx_mysql_pool_opts(|o| {
                o.after_connect(|conn, _| {
                    Box::pin(async move {
                        use sea_orm::sqlx::Executor;
                        conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await?;
                        Ok(())
                    })
                })
            });
        }
        let conn = Database::connect(opts).await?;
        let span = tracing::Span::current();
        span.record("backend", format!("{:?}", conn.get_database_backend()));
        span.record("connections", max);
        let mut db = Self::from_connection(conn);
        if db.is_mysql() {
            db.returning = is_mariadb_with_returning(&db.conn).await?;
        }
        Ok(db)
    }

    /// A handle on an open pool. On MySQL it assumes no `INSERT … RETURNING` (what
    /// [`Db::connect_with`] finds out instead).
    pub fn from_connection(conn: DatabaseConnection) -> Self {
        let sqlite = conn.get_database_backend() == DbBackend::Sqlite;
        let write_gate = sqlite.then(|| Arc::new(Mutex::new(())));
        Self { conn, write_gate, wakers: Arc::default(), outlet: Arc::default(), returning: sqlite }
    }

    /// Whether a multi-row `INSERT … RETURNING id` can hand back the new rows' ids.
    pub fn insert_returns_ids(&self) -> bool {
        self.returning
    }

    /// Makes `outlet` receive the events every transaction of this database (and its
    /// clones) publishes. Installed once, at start-up; a second call is ignored.
    pub fn install_outlet(&self, outlet: Arc<dyn EventOutlet>) {
        if self.outlet.set(outlet).is_err() {
            tracing::warn!("an event outlet was already installed; keeping the first");
        }
    }

    /// The in-process signal `name` (see [`WriteTxn::wake_after_commit`]).
    pub fn waker(&self, name: &'static str) -> Arc<Notify> {
        self.wakers.get(name)
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    pub fn is_mysql(&self) -> bool {
        self.backend() == DbBackend::MySql
    }

    /// Begins a transaction that may read then write. On SQLite it holds the write gate;
    /// on MySQL it runs at READ COMMITTED, the isolation every connection of the pool was
    /// set to when it was made.
    pub async fn write_txn(&self) -> Result<WriteTxn, DbErr> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        let txn = match self.backend() {
            DbBackend::MySql => self.conn.begin().await?,
            // IMMEDIATE takes SQLite's write lock up front (waiting out the busy timeout),
            // so a transaction that reads first cannot fail on upgrading its snapshot
            // when a writer outside the gate (a single autocommit statement) got in between.
            _ => {
                let options = TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                };
                self.conn.begin_with_options(options).await?
            }
        };
        Ok(WriteTxn { txn, _gate: gate, wakers: self.wakers.clone(), wake: Default::default(), outlet: self.outlet.get().cloned(), after: Default::default() })
    }

    /// Runs `work` (which opens and commits its own transaction) again when the database
    /// reports a deadlock or lock timeout, a few times with a short pause.
    pub async fn retrying<T, F, Fut>(&self, mut work: F) -> Result<T, crate::error::AppError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, crate::error::AppError>>,
    {
        let mut attempt = 0;
        loop {
            match work().await {
                Err(e) if e.code == crate::error::DB_CONFLICT && attempt < RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(retry_pause(attempt)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }

    /// Connections in use and idle, for the metrics endpoint.
    /// Sets the `db_pool_connections{state}` gauges to the pool as it is now.
    pub fn record_pool_gauges(&self) {
        let (size, idle) = self.pool_stats();
        metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("db_pool_connections", "state" => "in_use").set(size.saturating_sub(idle as u32) as f64);
    }

    pub fn pool_stats(&self) -> (u32, usize) {
        match self.backend() {
            DbBackend::Sqlite => {
                let pool = self.conn.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.conn.get_mysql_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
    }
}

impl Deref for Db {
    type Target = DatabaseConnection;
    fn deref(&self) -> &DatabaseConnection {
        &self.conn
    }
}

fn create_sqlite_parent_dir(url: &str) {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return;
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
}

/// The one way to write: `db_write!(db, |txn| { …; Ok(value) })` runs the block with
/// `txn` a fresh write transaction, commits it when the block returns `Ok`, rolls it back
/// when it returns `Err` (returned as it is), and runs the whole block again in a new
/// transaction when the database reports a deadlock or lock timeout at any statement or
/// at the commit (see [`Db::retrying`]).
///
/// A macro, not a method taking an async closure: the future of an async closure that
/// borrows its argument cannot be shown to be `Send` for every lifetime yet
/// (rust-lang/rust#100013), and every request handler's future must be `Send`.
#[macro_export]
macro_rules! db_write {
    ($db:expr, |$txn:ident| $body:block) => {{
        let db: &$crate::platform::db::Db = &$db;
        db.retrying(|| async {
            let $txn = db.write_txn().await?;
            let value = $crate::platform::db::in_transaction(async { $body }).await?;
            $txn.commit().await?;
            Ok(value)
        })
        .await
    }};
}

/// Pins the error type of a [`db_write!`] block (so `?` inside it converts into
/// `AppError`).
#[doc(hidden)]
pub async fn in_transaction<T>(block: impl std::future::Future<Output = Result<T, crate::error::AppError>>) -> Result<T, crate::error::AppError> {
    block.await
}

/// How many times a conflicting transaction is run again.
pub(crate) const RETRIES: u32 = 4;

/// The pause before the `attempt`-th rerun: short, growing, jittered so that two
/// transactions that deadlocked each other do not collide again in step.
pub(crate) fn retry_pause(attempt: u32) -> Duration {
    Duration::from_millis(5 * (1 << attempt) + rand::random::<u64>() % 10)
}

/// True for errors that go away when the transaction is simply run again: MySQL
/// deadlocks (SQLSTATE 40001) and lock wait timeouts, SQLite busy/locked.
pub fn is_retryable(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err else {
        return false;
    };
    match e.as_ref() {
        sea_orm::sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite's SQLITE_BUSY/SQLITE_LOCKED (any extended code) read "… is locked".
            let sqlite_busy = db.message().contains("database is locked") || db.message().contains("table is locked");
            code == "40001" || sqlite_busy || db.message().contains("Lock wait timeout")
        }
        _ => false,
    }
}

/// True when the error is a unique-key violation, on either engine.
/// MariaDB has had `INSERT … RETURNING` since 10.5 (`VERSION()` reads like
/// `10.11.19-MariaDB-0+deb12u1`); MySQL has none.
async fn is_mariadb_with_returning(conn: &DatabaseConnection) -> Result<bool, DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let row = conn.query_one_raw(Statement::from_string(DbBackend::MySql, "SELECT VERSION()")).await?;
    let version: String = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => return Ok(false),
    };
    Ok(mariadb_returns(&version))
}

fn mariadb_returns(version: &str) -> bool {
    let mut parts = version.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version.contains("MariaDB") && (major, minor) >= (10, 5)
}

pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Rows one `INSERT … RETURNING` carries (a few values each: well under SQLite's 32,766
/// variables per statement).
const ROWS_PER_INSERT: usize = 256;
/// Bytes of values one insert carries, at most (but always one row): MariaDB refuses a
/// statement over `max_allowed_packet` (16 MiB by default) and drops the connection, and
/// a batch of large rows (256 broker payloads of up to 256 KiB) would get there.
const BYTES_PER_INSERT: usize = 4 << 20;

/// How many rows of the given sizes each insert takes, in order: up to [`ROWS_PER_INSERT`]
/// rows and [`BYTES_PER_INSERT`] bytes, and at least one row.
fn insert_chunks(sizes: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut chunks = Vec::new();
    let (mut rows, mut bytes) = (0, 0);
    for size in sizes {
        if rows > 0 && (rows == ROWS_PER_INSERT || bytes + size > BYTES_PER_INSERT) {
            chunks.push(rows);
            (rows, bytes) = (0, 0);
        }
        rows += 1;
        bytes += size;
    }
    if rows > 0 {
        chunks.push(rows);
    }
    chunks
}

/// Inserts `rows` and returns their ids in the rows' order; `size` tells a row's bytes
/// (its large values: enough to keep a statement under [`BYTES_PER_INSERT`]). Where the
/// engine returns ids from an insert ([`Db::insert_returns_ids`]: SQLite, MariaDB) that is
/// one `INSERT … VALUES (…), (…) RETURNING id` per chunk of rows: each row takes the next
/// auto-increment value as it is inserted, in `VALUES` order, so the returned ids in
/// ascending order are the rows' ids in order, whatever order they come back in.
/// Elsewhere (MySQL) one statement per row: MySQL hands back only the first id of a
/// multi-row insert, and its ids need not be consecutive (interleaved auto-increment).
/// The error is the database's (a caller may want to tell a unique-key violation apart).
pub async fn insert_ids<A, C>(conn: &C, returning: bool, rows: Vec<A>, size: impl Fn(&A) -> usize) -> Result<Vec<i64>, DbErr>
where
    A: sea_orm::ActiveModelTrait + Send,
    C: sea_orm::ConnectionTrait,
    <<A::Entity as sea_orm::EntityTrait>::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: Into<i64>,
{
    use sea_orm::{EntityTrait, QueryTrait};
    let mut ids = Vec::with_capacity(rows.len());
    if !returning {
        for row in rows {
            ids.push(A::Entity::insert(row).exec(conn).await?.last_insert_id.into());
        }
        return Ok(ids);
    }
    let chunks = insert_chunks(rows.iter().map(&size));
    let mut rows = rows.into_iter();
    for expected in chunks {
        let chunk: Vec<A> = rows.by_ref().take(expected).collect();
        let mut statement = A::Entity::insert_many(chunk).build(conn.get_database_backend());
        statement.sql.push_str(" RETURNING id");
        let returned = conn.query_all_raw(statement).await?;
        let mut got = returned.iter().map(|r| r.try_get_by_index::<i64>(0)).collect::<Result<Vec<i64>, _>>()?;
        if got.len() != expected {
            return Err(DbErr::Custom(format!("{} ids back from inserting {expected} rows", got.len())));
        }
        got.sort_unstable();
        ids.extend(got);
    }
    Ok(ids)
}

/// `FOR UPDATE SKIP LOCKED` where the engine has it (MySQL ≥ 8, MariaDB ≥ 10.6). SQLite
/// has neither row locks nor the clause: there the write gate serialises claimers.
pub fn skip_locked<Q: sea_orm::QuerySelect>(query: Q, backend: DbBackend) -> Q {
    use sea_orm::sea_query::{LockBehavior, LockType};
    if backend == DbBackend::MySql {
        query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
    } else {
        query
    }
}

/// `FOR UPDATE` on MySQL (waits for the row); nothing on SQLite, where the write gate
/// already serialises writers.
pub fn for_update<Q: sea_orm::QuerySelect>(query: Q, backend: DbBackend) -> Q {
    if backend == DbBackend::MySql {
        query.lock_exclusive()
    } else {
        query
    }
}

/// A database failure as the client sees it: a transient conflict is a 503 to retry, a
/// lost connection a 503 to come back later, anything else a 500. The cause is logged
/// here and kept as the error's source.
impl From<DbErr> for crate::error::AppError {
    fn from(err: DbErr) -> Self {
        use crate::error::{AppError, DB_CONFLICT};
        let answer = if is_retryable(&err) {
            tracing::warn!(error = %err, "transient database conflict");
            AppError::new(503, DB_CONFLICT, "the database reported a conflict; retry the request")
        } else {
            tracing::error!(error = %err, "database error");
            match err {
                DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => AppError::unavailable("the database is unavailable; retry later"),
                _ => AppError::internal(),
            }
        };
        answer.caused_by(err)
    }
}

#[cfg(test)]
mod tests {
    use super::{insert_chunks, mariadb_returns};

    #[test]
    fn inserts_are_cut_by_rows_and_by_bytes() {
        assert_eq!(insert_chunks([10; 600]), [256, 256, 88]);
        // 1 MiB rows: four per statement; a row over the limit still goes, alone.
        assert_eq!(insert_chunks([1 << 20; 9]), [4, 4, 1]);
        assert_eq!(insert_chunks([10, 5 << 20, 10, 10]), [1, 1, 2]);
        assert!(insert_chunks(std::iter::empty()).is_empty());
    }

    #[test]
    fn insert_returning_is_told_from_the_server_version() {
        assert!(mariadb_returns("10.11.19-MariaDB-0+deb12u1"));
        assert!(mariadb_returns("11.4.2-MariaDB"));
        assert!(mariadb_returns("10.5.0-MariaDB-log"));
        assert!(!mariadb_returns("10.4.34-MariaDB"));
        assert!(!mariadb_returns("8.0.36"), "MySQL has no INSERT … RETURNING");
        assert!(!mariadb_returns("8.4.0-0ubuntu0.24.04.1"));
    }
}
