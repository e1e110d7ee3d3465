//! Live updates that cross processes.
//!
//! A change is a row in `change_log`, written in the same transaction as the business
//! write it describes. Each process runs one poller that tails the table by primary key
//! and fans new rows out to its open pages over a broadcast channel; an SSE stream
//! resumes from `Last-Event-ID` by reading the table again. So a webhook accepted by
//! process A reaches a page served by process B, and a reconnect loses nothing.
//!
//! Ids are handed out at insert but become visible at commit, so a younger change can be
//! visible before an older one. The poller therefore stops at the first gap in the ids
//! and waits for it to fill; only a gap older than [`GAP_PATIENCE`] (a rolled-back
//! transaction) is stepped over.

use super::db::Db;
use super::time::now_ms;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::Stream;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "change_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub channel: String,
        pub payload: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{Column, Entity as ChangeRow};

const GAP_PATIENCE: Duration = Duration::from_secs(3);
const BATCH: u64 = 500;
/// A stream ends after this and the browser reconnects (resuming by `Last-Event-ID`):
/// the caller's credentials are checked again, so a stream does not outlive a sign-out,
/// a password change or a lost role by more than this.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// One change as pages receive it.
#[derive(Clone, Debug)]
pub struct Change {
    pub id: i64,
    pub channel: String,
    /// JSON text.
    pub payload: String,
}

impl From<entity::Model> for Change {
    fn from(row: entity::Model) -> Self {
        Self { id: row.id, channel: row.channel, payload: row.payload }
    }
}

/// Records a change; call it with the transaction of the write it describes.
pub async fn record<C: ConnectionTrait>(conn: &C, channel: &str, payload: &impl Serialize) -> Result<(), DbErr> {
    let payload = serde_json::to_string(payload).map_err(|e| DbErr::Json(e.to_string()))?;
    let row = entity::ActiveModel {
        channel: Set(channel.to_owned()),
        payload: Set(payload),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    ChangeRow::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

/// [`record`] for several changes at once: one insert.
pub async fn record_many<C: ConnectionTrait>(conn: &C, changes: &[(String, serde_json::Value)]) -> Result<(), DbErr> {
    if changes.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let rows = changes.iter().map(|(channel, payload)| entity::ActiveModel {
        channel: Set(channel.clone()),
        payload: Set(payload.to_string()),
        created_at: Set(now),
        ..Default::default()
    });
    ChangeRow::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

/// Whether changes after `after_id` may have been pruned already: the oldest change kept
/// is newer than the one after it (by the primary key: one index read).
async fn pruned_since(db: &Db, after_id: i64) -> Result<bool, DbErr> {
    let oldest: Option<i64> = ChangeRow::find().select_only().column(Column::Id).order_by_asc(Column::Id).into_tuple().one(&db.conn).await?;
    Ok(oldest.is_some_and(|oldest| oldest > after_id + 1))
}

/// Changes after `after_id` on `channel`, oldest first, by the `(channel, id)` index.
/// The channel matches exactly: a prefix match (`LIKE 'chat/a_c/%'`) would let `_` in a
/// username match other users' channels.
pub async fn since(db: &Db, channel: &str, after_id: i64, limit: u64) -> Result<Vec<Change>, DbErr> {
    Ok(ChangeRow::find()
        .filter(Column::Channel.eq(channel))
        .filter(Column::Id.gt(after_id))
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(Change::from)
        .collect())
}

/// How long changes are kept: long enough for a page that lost its connection (a laptop
/// lid, a train tunnel) to resume where it was, and longer than a stream lives (so a
/// routine reconnect resumes); a page back from longer is told to read afresh (a
/// `{"reset":true}` change), since what it missed may be gone.
pub const RETENTION: Duration = Duration::from_secs(60 * 60);
/// Ids one pruning statement covers at most, so no delete grows with the table.
const PRUNE_CHUNK: i64 = 5_000;

/// Deletes changes older than `age` (a periodic job), oldest first, a bounded range of
/// ids per statement: ids grow with time, so the walk stops at the first young one.
pub async fn prune(db: &Db, age: Duration) -> Result<u64, DbErr> {
    let cutoff = now_ms() - age.as_millis() as i64;
    let mut removed = 0;
    loop {
        let oldest = ChangeRow::find().order_by_asc(Column::Id).one(&db.conn).await?;
        let Some(oldest) = oldest.filter(|r| r.created_at < cutoff) else { return Ok(removed) };
        let res = ChangeRow::delete_many()
            .filter(Column::Id.lt(oldest.id + PRUNE_CHUNK))
            .filter(Column::CreatedAt.lt(cutoff))
            .exec(&db.conn)
            .await?;
        removed += res.rows_affected;
        if res.rows_affected == 0 {
            return Ok(removed);
        }
    }
}

/// Changes a slow page may fall behind by before it reads the rest from the table.
const PER_CHANNEL_BUFFER: usize = 256;

/// The per-process fan-out of changes to open pages. Each channel has its own broadcast,
/// so a change wakes only the pages that follow it (a thousand open inboxes are not all
/// woken by one chat post).
#[derive(Clone)]
pub struct ChangeHub {
    channels: Arc<std::sync::Mutex<HashMap<String, broadcast::Sender<Arc<Change>>>>>,
    /// Highest id delivered to subscribers (everything at or below it has been seen).
    horizon: Arc<AtomicI64>,
    /// Turns true at shutdown so that open streams end and the server can drain.
    closing: Arc<watch::Sender<bool>>,
}

impl Default for ChangeHub {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeHub {
    pub fn new() -> Self {
        let (closing, _) = watch::channel(false);
        Self { channels: Arc::default(), horizon: Arc::new(AtomicI64::new(0)), closing: Arc::new(closing) }
    }

    /// Ends every open stream (graceful shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// The live changes on `channel` from now on.
    pub fn subscribe(&self, channel: &str) -> broadcast::Receiver<Arc<Change>> {
        let mut channels = self.channels.lock().expect("change hub lock");
        match channels.get(channel) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(PER_CHANNEL_BUFFER);
                channels.insert(channel.to_owned(), tx);
                rx
            }
        }
    }

    /// Hands a change to the pages following its channel; forgets channels nobody
    /// follows any more.
    fn publish(&self, change: Change) {
        let mut channels = self.channels.lock().expect("change hub lock");
        if let Some(tx) = channels.get(&change.channel) {
            if tx.send(Arc::new(change.clone())).is_err() {
                channels.remove(&change.channel);
            }
        }
    }

    /// Drops the channels whose last follower left without a change coming after.
    fn sweep(&self) {
        self.channels.lock().expect("change hub lock").retain(|_, tx| tx.receiver_count() > 0);
    }

    /// Resolves once the hub is closed (shutdown): for tasks that follow it.
    pub async fn closed(&self) {
        let mut closing = self.closing.subscribe();
        let _ = closing.wait_for(|closed| *closed).await;
    }

    pub fn horizon(&self) -> i64 {
        self.horizon.load(Ordering::Acquire)
    }

    /// Sets the starting point to the current end of the table. Called before the server
    /// accepts requests, so every change committed after start-up is tailed; pages open
    /// from before resume through `Last-Event-ID`.
    pub async fn prime(&self, db: &Db) -> Result<(), DbErr> {
        let newest = ChangeRow::find().order_by_desc(Column::Id).one(&db.conn).await?;
        self.horizon.store(newest.map_or(0, |r| r.id), Ordering::Release);
        Ok(())
    }

    /// Tails `change_log` from the primed position until [`ChangeHub::close`].
    pub async fn run_poller(self, db: Db, every: Duration) {
        let mut shutdown = self.closing.subscribe();
        let mut last = self.horizon();
        let mut gap_since: Option<tokio::time::Instant> = None;
        let mut sweep = tokio::time::interval(Duration::from_secs(60));
        while !*shutdown.borrow() {
            match self.poll_once(&db, &mut last, &mut gap_since).await {
                Ok(true) => continue, // a full batch: there may be more right now
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "change poller query failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = sweep.tick() => self.sweep(),
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn poll_once(
        &self,
        db: &Db,
        last: &mut i64,
        gap_since: &mut Option<tokio::time::Instant>,
    ) -> Result<bool, DbErr> {
        let rows = ChangeRow::find()
            .filter(Column::Id.gt(*last))
            .order_by_asc(Column::Id)
            .limit(BATCH)
            .all(&db.conn)
            .await?;
        let full = rows.len() as u64 == BATCH;
        for row in rows {
            if row.id != *last + 1 {
                let since = *gap_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() < GAP_PATIENCE {
                    return Ok(false); // an older transaction may still commit into the gap
                }
            }
            *gap_since = None;
            *last = row.id;
            self.horizon.store(row.id, Ordering::Release);
            self.publish(row.into());
        }
        Ok(full)
    }
}

/// The SSE event name of every change; the stream's URL says which changes they are.
pub const EVENT: &str = "change";

/// The shape of one event on a change stream, for the OpenAPI document. OpenAPI 3.1 has
/// no `itemSchema`, so a `text/event-stream` response's `schema` describes a single
/// event; describing it as a plain string made schemathesis reject every real event.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: events are built by [`sse`]
pub struct ChangeEvent {
    /// Always `change`.
    event: String,
    /// The change id; a reconnect sends it back as `Last-Event-ID` to resume.
    id: String,
    /// The change itself, a JSON document encoded as text.
    data: String,
}

/// The `Last-Event-ID` a reconnecting browser sends, if any.
pub fn last_event_id(headers: &axum::http::HeaderMap) -> Option<i64> {
    headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

/// An SSE response carrying the changes on `channel`: first the
/// ones after `last_event_id` from the table, then live ones from the hub. Each event is
/// named [`EVENT`], carries the change's JSON payload, and has the change id as its `id`,
/// so the browser's automatic reconnect (Last-Event-ID) resumes without gaps.
pub fn sse(
    db: Db,
    hub: ChangeHub,
    channel: String,
    last_event_id: Option<i64>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = change_stream(db, hub, channel, last_event_id);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn change_stream(
    db: Db,
    hub: ChangeHub,
    channel: String,
    last_event_id: Option<i64>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    // Subscribe before reading the backlog so nothing falls between the two.
    let rx = hub.subscribe(&channel);
    let closing = hub.closing.subscribe();
    let start = last_event_id.unwrap_or_else(|| hub.horizon());
    let ends_at = tokio::time::Instant::now() + STREAM_LIFETIME;
    let resuming = last_event_id.is_some();
    futures::stream::unfold(
        (db, hub, rx, closing, channel, start, std::collections::VecDeque::<Change>::new(), true, resuming),
        move |(db, hub, mut rx, mut closing, channel, mut last, mut pending, mut catch_up, mut resuming)| async move {
            loop {
                if tokio::time::Instant::now() >= ends_at {
                    return None;
                }
                if let Some(change) = pending.pop_front() {
                    last = change.id;
                    let event = Event::default().id(change.id.to_string()).event(EVENT).data(change.payload);
                    return Some((Ok(event), (db, hub, rx, closing, channel, last, pending, catch_up, resuming)));
                }
                if catch_up && resuming {
                    resuming = false;
                    // A client back from longer than RETENTION may have missed changes
                    // that were pruned since: one change tells its page to read afresh.
                    match pruned_since(&db, last).await {
                        Ok(true) => {
                            let now = hub.horizon().max(last);
                            pending.push_back(Change { id: now, channel: channel.clone(), payload: r#"{"reset":true}"#.into() });
                            last = now;
                            continue;
                        }
                        Ok(false) => {}
                        Err(err) => tracing::warn!(error = %err, "change retention check failed"),
                    }
                }
                if catch_up {
                    match since(&db, &channel, last, BATCH).await {
                        Ok(rows) => {
                            catch_up = rows.len() as u64 == BATCH;
                            pending.extend(rows);
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "change backlog query failed");
                            catch_up = false;
                        }
                    }
                    continue;
                }
                let received = tokio::select! {
                    received = rx.recv() => received,
                    _ = closing.wait_for(|closed| *closed) => return None,
                    _ = tokio::time::sleep_until(ends_at) => return None,
                };
                match received {
                    Ok(change) if change.id > last && change.channel == channel => {
                        pending.push_back((*change).clone());
                    }
                    Ok(_) => {}
                    // Too slow to keep up: read what was missed from the table.
                    Err(broadcast::error::RecvError::Lagged(_)) => catch_up = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}

/// Deletes changes older than [`RETENTION`].
pub const PRUNE_JOB: &str = "platform.prune_changes";

pub fn register_jobs(jobs: &mut super::jobs::JobRegistry) {
    jobs.periodic(PRUNE_JOB, Duration::from_secs(60), Duration::from_secs(60), |state, _| async move {
        let removed = prune(&state.db, RETENTION).await?;
        tracing::debug!(removed, "old changes pruned");
        Ok(())
    });
}
