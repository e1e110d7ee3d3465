//! The database handle: one pool, SQLite or MySQL/MariaDB chosen by `DATABASE_URL`.

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, IsolationLevel,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Clone)]
pub struct Db {
    pub conn: DatabaseConnection,
    /// SQLite allows one writer; a transaction that reads and then writes fails outright
    /// (SQLITE_BUSY_SNAPSHOT) when another writer committed in between, whatever the busy
    /// timeout. Serialising write transactions inside the (single) process avoids that.
    /// MySQL has row locks and needs no gate.
    write_gate: Option<Arc<Mutex<()>>>,
}

/// A write transaction; on SQLite it also holds the process-wide write gate.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

impl Db {
    #[tracing::instrument(skip_all, fields(backend))]
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            create_sqlite_parent_dir(url);
        }
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(if sqlite { 8 } else { 20 })
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        if sqlite {
            opts.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        }
        let conn = Database::connect(opts).await?;
        tracing::Span::current().record("backend", format!("{:?}", conn.get_database_backend()));
        Ok(Self::from_connection(conn))
    }

    pub fn from_connection(conn: DatabaseConnection) -> Self {
        let write_gate =
            (conn.get_database_backend() == DbBackend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Self { conn, write_gate }
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    pub fn is_mysql(&self) -> bool {
        self.backend() == DbBackend::MySql
    }

    /// Begins a transaction that may read then write. On SQLite it holds the write gate;
    /// on MySQL it runs at READ COMMITTED: locking reads then lock only the rows they
    /// return, never the gaps between them, which is what queue-like tables (claims with
    /// SKIP LOCKED, insert-if-missing) need to stay free of gap-lock deadlocks.
    pub async fn write_txn(&self) -> Result<WriteTxn, DbErr> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        let txn = match self.backend() {
            DbBackend::MySql => self.conn.begin_with_config(Some(IsolationLevel::ReadCommitted), None).await?,
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
        Ok(WriteTxn { txn, _gate: gate })
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
                Err(e) if e.code == crate::error::DB_CONFLICT && attempt < 4 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5 * (1 << attempt) + rand::random::<u64>() % 10)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }

    /// Connections in use and idle, for the metrics endpoint.
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
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
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
