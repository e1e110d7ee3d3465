//! The import pipeline: an LCA file (the DOL's CSV or Excel workbook) read on a blocking
//! thread, parsed into filings, and written in large batches; uploads kept in the object
//! store and imported by a job on any process, their progress saved for the page.

use crate::db_write;
use super::analytics;
use super::domain::{BadRow, ImportState, ImportView};
use super::lca::{self, Columns, Filing};
use super::store::{self, import};
use super::xlsx;
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::db::Db;
use crate::platform::state::AppState;
use crate::platform::time::now_ms;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The job that imports an uploaded file.
pub const IMPORT_JOB: &str = "wages.import_lca";
/// The live channel of import progress.
pub const CHANNEL: &str = "wages/imports/";
/// Reports kept at most (the count goes on).
const KEEP_ERRORS: usize = 100;
/// Rows parsed before they are written: one transaction of a few large statements.
const BATCH: usize = 10_000;

/// Where an import stands (what progress callbacks receive).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub rows_new: u64,
    pub rows_updated: u64,
    pub rows_bad: u64,
    pub errors: Vec<BadRow>,
}

impl Progress {
    fn bad(&mut self, line: u64, reason: String) {
        self.rows_bad += 1;
        if self.errors.len() < KEEP_ERRORS {
            self.errors.push(BadRow { line, reason });
        }
    }
}

/// What the reading thread hands over: a batch (with how far into the file it got), or
/// why the file cannot be read at all.
enum Parsed {
    Batch(Vec<(u64, Result<Filing, String>)>, u64),
    Fatal(String),
}

/// Counts the bytes the CSV reader has consumed (for the progress bar).
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Collects parsed rows into batches and sends them; `false` once the receiver is gone.
struct Batcher {
    tx: tokio::sync::mpsc::Sender<Parsed>,
    batch: Vec<(u64, Result<Filing, String>)>,
}

impl Batcher {
    fn push(&mut self, line: u64, parsed: Result<Filing, String>, progress: u64) -> bool {
        self.batch.push((line, parsed));
        self.batch.len() < BATCH || self.flush(progress)
    }

    fn flush(&mut self, progress: u64) -> bool {
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx.blocking_send(Parsed::Batch(full, progress)).is_ok()
    }

    fn fatal(self, reason: String) {
        let _ = self.tx.blocking_send(Parsed::Fatal(reason));
    }
}

/// Reads a CSV file: line numbers as a text editor counts them, progress in bytes.
fn read_csv(path: &Path, mut out: Batcher, read: Arc<AtomicU64>) {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return out.fatal(format!("cannot open {}: {e}", path.display())),
    };
    let reader = Counting { inner: std::io::BufReader::with_capacity(1 << 16, file), read: read.clone() };
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let cols = match csv.headers().map(|h| Columns::from_header(h.iter())) {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return out.fatal(e),
        Err(e) => return out.fatal(format!("unreadable header: {e}")),
    };
    let mut row = csv::StringRecord::new();
    loop {
        let (line, parsed) = match csv.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => (row.position().map_or(0, |p| p.line()), lca::parse(&cols, &row)),
            Err(e) => (e.position().map_or(0, |p| p.line()), Err(format!("unreadable CSV: {e}"))),
        };
        if !out.push(line, parsed, read.load(Ordering::Relaxed)) {
            return;
        }
    }
    out.flush(read.load(Ordering::Relaxed));
}

/// Reads the first worksheet of a workbook: row numbers as Excel shows them, progress
/// as the share of the sheet's rows read, in bytes of the file.
fn read_xlsx(path: &Path, mut out: Batcher, bytes_total: u64) {
    let mut cols: Option<Columns> = None;
    let mut fatal = None;
    let mut alive = true;
    let result = xlsx::for_each_row(path, |at, fields| {
        let Some(cols) = &cols else {
            match Columns::from_header(fields.iter().map(String::as_str)) {
                Ok(c) => cols = Some(c),
                Err(e) => fatal = Some(e),
            }
            return fatal.is_none();
        };
        let done = if at.last_row == 0 { 0 } else { bytes_total * at.row.min(at.last_row) / at.last_row };
        alive = out.push(at.row, lca::parse(cols, &fields), done);
        alive
    });
    match (result, fatal) {
        (Err(e), _) | (_, Some(e)) => out.fatal(e),
        (Ok(()), None) if cols.is_none() => out.fatal("the worksheet is empty: no header row".into()),
        (Ok(()), None) if alive => {
            out.flush(bytes_total);
        }
        _ => {}
    }
}

/// Imports an LCA file — the DOL's CSV or `.xlsx` workbook, told apart by its first bytes
/// — read on a blocking thread and written in batches of [`BATCH`] rows, upserted by case
/// number (re-importing changes nothing twice; a killed import run again finishes the
/// job). Bad rows are reported with their line (or row) numbers and skipped. Memory is
/// bounded by the batch (and a workbook's shared strings), whatever the file's size. With
/// an `import_id`, progress is saved on its row at most every 300 ms for the page's
/// progress bar; `on_progress` sees every batch (the CLI's terminal bar). When rows were
/// written, every process's in-memory copy learns of it through the change log.
#[tracing::instrument(skip(db, on_progress))]
pub async fn import_lca(db: &Db, path: &Path, import_id: Option<i64>, on_progress: &(dyn Fn(&Progress) + Send + Sync)) -> AppResult<Progress> {
    let total = std::fs::metadata(path).map(|m| m.len()).map_err(|e| AppError::invalid("file", format!("cannot open {}: {e}", path.display())))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Parsed>(2);
    let out = Batcher { tx, batch: Vec::with_capacity(BATCH) };
    let (file, read) = (path.to_owned(), Arc::new(AtomicU64::new(0)));
    let counter = read.clone();
    let reader = tokio::task::spawn_blocking(move || {
        if xlsx::is_workbook(&file) {
            read_xlsx(&file, out, total)
        } else {
            read_csv(&file, out, counter)
        }
    });
    let mut progress = Progress { bytes_total: total, ..Default::default() };
    let mut saved_at = std::time::Instant::now();
    let outcome = async {
        while let Some(msg) = rx.recv().await {
            let (rows, bytes) = match msg {
                Parsed::Fatal(reason) => return Err(AppError::invalid("file", reason)),
                Parsed::Batch(rows, bytes) => (rows, bytes),
            };
            let mut good = Vec::with_capacity(rows.len());
            for (line, parsed) in rows {
                match parsed {
                    Ok(f) => good.push(f),
                    Err(reason) => progress.bad(line, reason),
                }
            }
            let (new, updated) = store::upsert(db, &good, import_id).await?;
            metrics::counter!("wages_rows_imported_total").increment(new + updated);
            progress.rows_new += new;
            progress.rows_updated += updated;
            progress.bytes_done = bytes;
            on_progress(&progress);
            if let Some(id) = import_id.filter(|_| saved_at.elapsed() > std::time::Duration::from_millis(300)) {
                saved_at = std::time::Instant::now();
                record_progress(db, id, ImportState::Running, &progress).await?;
            }
        }
        Ok(())
    }
    .await;
    reader.await.map_err(|e| AppError::internal_because(format!("the import's reading thread failed: {e}")))?;
    if progress.rows_new + progress.rows_updated > 0 {
        analytics::announce_change(db, &serde_json::json!({"imported": progress.rows_new + progress.rows_updated})).await?;
    }
    outcome?;
    progress.bytes_done = progress.bytes_done.max(read.load(Ordering::Relaxed)).max(total);
    on_progress(&progress);
    Ok(progress)
}

pub fn import_view(i: import::Model) -> ImportView {
    ImportView {
        id: i.id,
        kind: i.kind,
        filename: i.filename,
        state: i.state,
        bytes_total: i.bytes_total,
        bytes_done: i.bytes_done,
        rows_new: i.rows_new,
        rows_updated: i.rows_updated,
        rows_bad: i.rows_bad,
        errors: serde_json::from_str(&i.errors).unwrap_or_default(),
        created_at: i.created_at,
        finished_at: i.finished_at,
    }
}

/// Registers an uploaded file for import (already in the object store) and queues the
/// job that imports it, in one transaction.
pub async fn queue_import<C: ConnectionTrait>(conn: &C, filename: &str, key: &str, bytes: u64, by: Option<i64>) -> AppResult<ImportView> {
    let row = import::ActiveModel {
        kind: Set("lca".into()),
        filename: Set(filename.chars().take(255).collect()),
        object_key: Set(Some(key.to_owned())),
        state: Set(ImportState::Queued),
        bytes_total: Set(bytes as i64),
        bytes_done: Set(0),
        rows_new: Set(0),
        rows_updated: Set(0),
        rows_bad: Set(0),
        errors: Set("[]".into()),
        created_by: Set(by),
        created_at: Set(now_ms()),
        finished_at: Set(None),
        ..Default::default()
    };
    let created = import::Entity::insert(row).exec_with_returning(conn).await?;
    crate::platform::jobs::enqueue(conn, IMPORT_JOB, &serde_json::json!({"import": created.id})).await?;
    Ok(import_view(created))
}

/// Saves an import's progress and tells open pages.
pub async fn record_progress(db: &Db, id: i64, state: ImportState, p: &Progress) -> AppResult<()> {
    db_write!(db, |txn| {
        import::Entity::update_many()
            .col_expr(import::Column::State, Expr::value(state))
            .col_expr(import::Column::BytesDone, Expr::value(p.bytes_done as i64))
            .col_expr(import::Column::RowsNew, Expr::value(p.rows_new as i64))
            .col_expr(import::Column::RowsUpdated, Expr::value(p.rows_updated as i64))
            .col_expr(import::Column::RowsBad, Expr::value(p.rows_bad as i64))
            .col_expr(import::Column::Errors, Expr::value(serde_json::to_string(&p.errors).unwrap_or_else(|_| "[]".into())))
            .col_expr(import::Column::FinishedAt, Expr::value(state.is_finished().then(now_ms)))
            .filter(import::Column::Id.eq(id))
            .exec(&*txn)
            .await?;
        crate::platform::changes::record(&*txn, CHANNEL, &serde_json::json!({"import": id, "state": state, "bytes_done": p.bytes_done})).await?;
        Ok(())
    })
}

/// Takes an uploaded LCA file (CSV or `.xlsx`) from an admin: streams it to a scratch
/// file (at most the upload limit), stores it in the object store and queues its import,
/// which any process's job runner then runs. The caller is judged before a byte is read.
pub async fn receive_upload<S, E>(state: &AppState, caller: &Caller, filename: Option<&str>, body: S) -> AppResult<ImportView>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    caller.require_admin()?;
    let scratch = tempfile::NamedTempFile::new().map_err(|e| AppError::unavailable(e.to_string()))?;
    let size = spool(body, scratch.path(), state.settings.part::<super::settings::WagesSettings>().upload_max_bytes).await?;
    let kind = if xlsx::is_workbook(scratch.path()) { "xlsx" } else { "csv" };
    let key = format!("wages/uploads/{}-{}.{kind}", now_ms(), crate::platform::secrets::random_token(12));
    state.store.put_file(&key, scratch.path()).await?;
    let default_name = format!("upload.{kind}");
    let filename = filename.map(str::trim).filter(|f| !f.is_empty()).unwrap_or(&default_name);
    db_write!(state.db, |txn| {
        let queued = queue_import(&*txn, filename, &key, size, Some(caller.id())).await?;
        Ok(queued)
    })
}

/// Writes a body to `path` as it arrives; returns its size.
async fn spool<S, E>(mut body: S, path: &Path, max: u64) -> AppResult<u64>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await.map_err(|e| AppError::unavailable(e.to_string()))?;
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| AppError::bad_request(format!("the upload was cut off: {e}")))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(crate::platform::guards::too_large(max));
        }
        file.write_all(&chunk).await.map_err(|e| AppError::unavailable(e.to_string()))?;
    }
    file.flush().await.map_err(|e| AppError::unavailable(e.to_string()))?;
    if size == 0 {
        return Err(AppError::invalid("body", "the upload is empty: send the CSV or .xlsx file as the request body"));
    }
    Ok(size)
}

/// The import job: fetch the uploaded file from the object store and import it. A run
/// cut short is simply run again: upserts make that harmless.
pub async fn run_import(state: &AppState, id: i64) -> AppResult<Progress> {
    let row = import::Entity::find_by_id(id).one(&state.db.conn).await?.ok_or_else(|| AppError::not_found("import"))?;
    let key = row.object_key.clone().ok_or_else(|| AppError::invalid("import", "this import has no uploaded file"))?;
    let scratch = tempfile::tempdir().map_err(|e| AppError::unavailable(e.to_string()))?;
    let path = scratch.path().join("upload");
    if !state.store.download(&key, &path).await? {
        return Err(AppError::not_found("uploaded file"));
    }
    record_progress(&state.db, id, ImportState::Running, &Progress { bytes_total: row.bytes_total as u64, ..Default::default() }).await?;
    match import_lca(&state.db, &path, Some(id), &|_| {}).await {
        Ok(p) => {
            record_progress(&state.db, id, ImportState::Done, &p).await?;
            Ok(p)
        }
        Err(e) => {
            let p = Progress { errors: vec![BadRow { line: 0, reason: e.message.clone() }], ..Default::default() };
            record_progress(&state.db, id, ImportState::Failed, &p).await?;
            Err(e)
        }
    }
}

/// One import, for admins.
pub async fn find_import(db: &Db, caller: &Caller, id: i64) -> AppResult<ImportView> {
    caller.require_admin()?;
    import::Entity::find_by_id(id).one(&db.conn).await?.map(import_view).ok_or_else(|| AppError::not_found("import"))
}

/// The live channel of import progress, for admins.
pub fn imports_channel(caller: &Caller) -> AppResult<String> {
    caller.require_admin()?;
    Ok(CHANNEL.to_owned())
}

/// The latest imports, for admins.
pub async fn recent_imports(db: &Db, caller: &Caller) -> AppResult<Vec<ImportView>> {
    caller.require_admin()?;
    Ok(import::Entity::find().order_by_desc(import::Column::Id).limit(10).all(&db.conn).await?.into_iter().map(import_view).collect())
}

/// The `wages import` command: imports a local file as the operator.
pub async fn import_file(db: &Db, caller: &Caller, path: &Path, on_progress: &(dyn Fn(&Progress) + Send + Sync)) -> AppResult<Progress> {
    caller.require_admin()?;
    import_lca(db, path, None, on_progress).await
}

/// Writes filings in batches (the demo's sample) and tells every copy.
pub async fn write_filings(db: &Db, filings: &[Filing]) -> AppResult<(u64, u64)> {
    let mut total = (0, 0);
    for chunk in filings.chunks(BATCH) {
        let (new, updated) = store::upsert(db, chunk, None).await?;
        total = (total.0 + new, total.1 + updated);
    }
    analytics::announce_change(db, &serde_json::json!({"written": filings.len()})).await?;
    Ok(total)
}
