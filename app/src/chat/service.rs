//! Chat use cases: post, read an inbox (which expires what it returns), look a message
//! up wherever it lives, and move expired messages to cold storage.

use crate::db_write;
use super::cold::{self, ColdLine};
use super::domain::*;
use super::store::{archived, batch, message};
use crate::accounts::domain::{Caller, Username};
use crate::error::{AppError, AppResult, OrInternal};
use crate::platform::db::{is_unique_violation, Db};
use crate::platform::group_commit::GroupCommit;
use crate::platform::state::AppState;
use crate::platform::time::now_ms;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// Live-page channel of one inbox.
pub fn channel(username: &str) -> String {
    format!("chat/{username}/")
}

/// Most messages one inbox read returns (and so expires); the rest stay unexpired for
/// the next read. Part of the contract: a read is one bounded statement whatever was
/// posted to the inbox.
pub const INBOX_PAGE: u64 = 100;
/// Most rows or ids one archiving statement carries (SQLite binds at most 32,766 values).
pub(super) const STATEMENT_CHUNK: usize = 1000;

/// Posts a message to `recipient`'s inbox; returns its id once committed. Publishes
/// `chat:message`. Any signed-in caller may leave a message for anyone. Concurrent posts
/// share a transaction (see [`super::posting`]).
#[tracing::instrument(skip(state, text, sender), fields(sender = %sender.username()))]
pub async fn post_message(state: &AppState, sender: &Caller, recipient: &str, text: &str, timeout: Option<i64>) -> AppResult<i64> {
    let sender = &sender.viewer;
    let recipient = Username::parse(recipient)?;
    let text = parse_text(text)?;
    let timeout = parse_timeout(timeout)?;
    let now = now_ms();
    let post = super::posting::NewPost {
        recipient,
        sender_id: sender.id,
        sender: sender.username.clone(),
        text,
        created_at: now,
        expiration_date: now + timeout * 1000,
    };
    state.part::<ChatState>().posts.submit(post).await
}

/// What one inbox read returned.
#[derive(Default)]
pub struct InboxRead {
    /// At most [`INBOX_PAGE`] messages, oldest first, now expired.
    pub messages: Vec<message::Model>,
    /// More unexpired messages are waiting for the next read.
    pub has_more: bool,
    /// Each message's expiration before this read (to put back if the reader is gone
    /// before it got them).
    pub(super) expired_from: Vec<(i64, i64)>,
}

/// A message as the pages show it; `now` decides whether it has expired.
pub fn message_view(line: ColdLine, storage: StoredIn, now: i64) -> MessageView {
    MessageView {
        id: line.id,
        username: line.username,
        sender: line.sender,
        text: line.text,
        created_at: line.created_at,
        expired: line.expiration_date <= now,
        expiration_date: line.expiration_date,
        storage,
    }
}

/// Whether `caller` may read `username`'s inbox: their own, or any as an admin.
fn may_read_inbox(caller: &Caller, username: &Username) -> bool {
    caller.username() == username.as_str() || caller.is_admin()
}

fn parse_inbox(caller: &Caller, username: &str) -> AppResult<Username> {
    let username = Username::parse(username)?;
    if !may_read_inbox(caller, &username) {
        return Err(AppError::forbidden("you may read only your own inbox"));
    }
    Ok(username)
}

/// Returns up to [`INBOX_PAGE`] unexpired messages of `username`, oldest first, and
/// expires them (their expiration becomes now) in the same transaction — on SQLite one
/// shared with concurrent reads (group commit, [`super::posting::Reads`]). Rows are locked while
/// read, so two reads never return the same message. An empty inbox — what most polls
/// find — is answered from one indexed read, with no transaction.
#[tracing::instrument(skip(state, caller), fields(caller = %caller.username()))]
pub async fn read_inbox(state: &AppState, caller: &Caller, username: &str) -> AppResult<InboxRead> {
    let username = parse_inbox(caller, username)?;
    let any = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::Username.eq(username.as_str()))
        .filter(message::Column::ExpirationDate.gt(now_ms()))
        .into_tuple::<i64>()
        .one(&state.db.conn)
        .await?;
    if any.is_none() {
        return Ok(InboxRead::default());
    }
    if let Some(reads) = &state.part::<ChatState>().reads {
        return reads.submit(username).await;
    }
    let pages = crate::db_write!(state.db, |txn| { super::posting::expire_pages(&txn, std::slice::from_ref(&username)).await })?;
    pages.into_iter().next().ok_or_else(|| AppError::internal_because("an inbox read returned no page"))
}

/// Unexpired messages waiting for `username`, without reading (expiring) them.
pub async fn waiting(db: &Db, caller: &Caller, username: &str) -> AppResult<Vec<Waiting>> {
    let username = parse_inbox(caller, username)?;
    Ok(message::Entity::find()
        .filter(message::Column::Username.eq(username.as_str()))
        .filter(message::Column::ExpirationDate.gt(now_ms()))
        .order_by_asc(message::Column::Id)
        .limit(200)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|m| Waiting { id: m.id, sender: m.sender, created_at: m.created_at, expiration_date: m.expiration_date })
        .collect())
}

/// The live-page channel of `username`'s inbox, for a caller who may read it.
pub fn inbox_channel(caller: &Caller, username: &str) -> AppResult<String> {
    Ok(channel(parse_inbox(caller, username)?.as_str()))
}

/// Chat's in-process state: posts waiting for their shared transaction (group commit)
/// and the cold batches read lately.
#[derive(Clone)]
pub struct ChatState {
    posts: GroupCommit<super::posting::Posts>,
    /// SQLite only. MySQL runs many read transactions at once and already shares their
    /// commits; funnelled through a few batch writers its reads were measured slower
    /// (1,372 against 2,281 reads/s at 64 connections). SQLite's one writer is what
    /// batching is for.
    reads: Option<GroupCommit<super::posting::Reads>>,
    cache: super::cold::BatchCache,
}

impl ChatState {
    /// Starts the post queue's writer on `db`.
    pub fn start(db: &Db) -> Self {
        Self {
            posts: GroupCommit::start(db.clone(), super::posting::Posts { returning: db.insert_returns_ids() }),
            reads: (!db.is_mysql()).then(|| GroupCommit::start(db.clone(), super::posting::Reads)),
            cache: super::cold::BatchCache::new(64),
        }
    }
}

/// A message by id, expired or not, wherever it lives — if `caller` may read it: it is
/// addressed to or sent by them, or they are an admin (404 when there is none, 403 when
/// it is someone else's).
#[tracing::instrument(skip(state, caller), fields(caller = %caller.username()))]
pub async fn open_message(state: &AppState, caller: &Caller, id: i64) -> AppResult<(ColdLine, StoredIn)> {
    let (line, storage) = find_message(state, id).await?.ok_or_else(|| AppError::not_found("message"))?;
    let mine = line.username == caller.username() || line.sender_id == Some(caller.id());
    if !mine && !caller.is_admin() {
        return Err(AppError::forbidden("this message is neither addressed to nor sent by you"));
    }
    Ok((line, storage))
}

/// A message by id, expired or not, from the hot table or cold storage.
#[tracing::instrument(skip(state))]
async fn find_message(state: &AppState, id: i64) -> AppResult<Option<(ColdLine, StoredIn)>> {
    if let Some(m) = message::Entity::find_by_id(id).one(&state.db.conn).await? {
        return Ok(Some((ColdLine::from(&m), StoredIn::Hot)));
    }
    let Some(place) = archived::Entity::find_by_id(id).one(&state.db.conn).await? else { return Ok(None) };
    let Some(lines) = state.part::<ChatState>().cache.get(&state.store, &place.batch_key).await? else {
        tracing::error!(id, key = %place.batch_key, "archived message's batch is missing from the object store");
        return Err(AppError::unavailable("the archived message could not be read from cold storage"));
    };
    let line = lines.get(place.line as usize).filter(|l| l.id == id).cloned();
    match line {
        Some(line) => Ok(Some((line, StoredIn::Archived))),
        None => {
            tracing::error!(id, key = %place.batch_key, line = place.line, "archive index points at the wrong line");
            Err(AppError::internal())
        }
    }
}

/// What one archiver run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    pub messages: u64,
    pub batches: u64,
}

/// Moves messages expired by now to cold storage, `batch_size` at a time.
///
/// Each batch is first written to the object store, then — in one transaction — its
/// index rows are recorded and the hot rows deleted. A crash before the commit leaves the
/// messages hot (and an unreferenced object to overwrite or ignore); after it, they are
/// cold. Either way every id stays readable exactly once. A second archiver racing on the
/// same rows fails its commit on the unique index and changes nothing.
///
/// The walk seeks from the last row it took, by the `(expiration_date, id)` order of
/// the expiration index, instead of starting the index over each batch (past rows
/// deleted but not yet purged by the engine); and the next batch is read, encoded and
/// put while the previous one commits.
#[tracing::instrument(skip(state))]
pub async fn archive_expired(state: &AppState, batch_size: u64) -> AppResult<ArchiveReport> {
    let mut report = ArchiveReport::default();
    let now = now_ms();
    let mut after: Option<(i64, i64)> = None;
    let mut stored: Option<(String, Vec<message::Model>)> = None;
    loop {
        let commit = async {
            match stored.take() {
                Some((key, rows)) => commit_batch(&state.db, &key, &rows, now).await.map(|()| rows.len() as u64),
                None => Ok(0),
            }
        };
        let (next, committed) = tokio::join!(store_next_batch(state, now, after, batch_size), commit);
        match committed {
            Ok(0) => {}
            Ok(n) => {
                report.messages += n;
                report.batches += 1;
                metrics::counter!("chat_archived_total").increment(n);
            }
            Err(e) if e.code == "archive_race" => {
                tracing::warn!("another archiver took these messages; leaving them to it");
                return Ok(report);
            }
            Err(e) => return Err(e),
        }
        match next? {
            Some((key, rows, position)) => {
                after = Some(position);
                stored = Some((key, rows));
            }
            None => return Ok(report),
        }
    }
}

/// Reads the next batch of messages expired by `now` after `after` (an (expiration, id)
/// position), and writes it to the object store; `None` when there are no more. Returns
/// the object key, the rows by id, and the position to go on from.
async fn store_next_batch(state: &AppState, now: i64, after: Option<(i64, i64)>, batch_size: u64) -> AppResult<Option<(String, Vec<message::Model>, (i64, i64))>> {
    use sea_orm::Condition;
    let mut find = message::Entity::find().filter(message::Column::ExpirationDate.lte(now));
    if let Some((expired_at, id)) = after {
        find = find.filter(
            Condition::any()
                .add(message::Column::ExpirationDate.gt(expired_at))
                .add(Condition::all().add(message::Column::ExpirationDate.eq(expired_at)).add(message::Column::Id.gt(id))),
        );
    }
    let rows = find
        .order_by_asc(message::Column::ExpirationDate)
        .order_by_asc(message::Column::Id)
        .limit(batch_size)
        .all(&state.db.conn)
        .await?;
    let Some(last) = rows.last() else { return Ok(None) };
    let position = (last.expiration_date, last.id);
    let mut lines: Vec<ColdLine> = rows.iter().map(ColdLine::from).collect();
    lines.sort_by_key(|l| l.id);
    let key = cold::batch_key(now, lines[0].id, lines[lines.len() - 1].id);
    let bytes = cold::encode(&lines).or_internal("encoding an archive batch")?;
    state.store.put(&key, bytes).await?;
    // The index records each message's line in the object: the same (id) order.
    let mut rows = rows;
    rows.sort_by_key(|m| m.id);
    Ok(Some((key, rows, position)))
}

async fn commit_batch(db: &Db, key: &str, rows: &[message::Model], now: i64) -> AppResult<()> {
    db_write!(db, |txn| {
        let batch_row = batch::ActiveModel {
            object_key: Set(key.to_owned()),
            messages: Set(rows.len() as i32),
            first_id: Set(rows[0].id),
            last_id: Set(rows[rows.len() - 1].id),
            created_at: Set(now),
            ..Default::default()
        };
        let index = rows.iter().enumerate().map(|(line, m)| archived::ActiveModel {
            message_id: Set(m.id),
            username: Set(m.username.clone()),
            sender_id: Set(m.sender_id),
            batch_key: Set(key.to_owned()),
            line: Set(line as i32),
            archived_at: Set(now),
        });
        // In chunks: a batch may hold up to 100,000 messages, more than one statement may bind.
        let index: Vec<archived::ActiveModel> = index.collect();
        let written = async {
            batch::Entity::insert(batch_row).exec_without_returning(&*txn).await?;
            for chunk in index.chunks(STATEMENT_CHUNK) {
                archived::Entity::insert_many(chunk.to_vec()).exec_without_returning(&*txn).await?;
            }
            Ok::<_, sea_orm::DbErr>(())
        };
        if let Err(e) = written.await {
            return Err(if is_unique_violation(&e) { AppError::conflict("archive_race", "already archived") } else { e.into() });
        }
        let mut deleted = 0;
        for chunk in rows.chunks(STATEMENT_CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|m| m.id).collect();
            deleted += message::Entity::delete_many().filter(message::Column::Id.is_in(ids)).exec(&*txn).await?.rows_affected;
        }
        if deleted != rows.len() as u64 {
            // Someone else archived (and deleted) some of them first: keep theirs.
            return Err(AppError::conflict("archive_race", "already archived"));
        }
        Ok(())
    })
}

/// Deletes cold batches older than `retention` (objects, index rows, batch rows).
/// Returns how many messages were purged.
#[tracing::instrument(skip(state))]
pub async fn purge_cold(state: &AppState, retention: std::time::Duration) -> AppResult<u64> {
    let cutoff = now_ms() - retention.as_millis() as i64;
    let mut purged = 0;
    loop {
        let old = batch::Entity::find()
            .filter(batch::Column::CreatedAt.lt(cutoff))
            .order_by_asc(batch::Column::CreatedAt)
            .limit(100)
            .all(&state.db.conn)
            .await?;
        if old.is_empty() {
            return Ok(purged);
        }
        for b in old {
            db_write!(state.db, |txn| {
                archived::Entity::delete_many().filter(archived::Column::BatchKey.eq(&b.object_key)).exec(&*txn).await?;
                batch::Entity::delete_by_id(b.id).exec(&*txn).await?;
                Ok(())
            })?;
            // After the commit: a crash here leaves only an unreferenced object behind.
            state.store.delete(&b.object_key).await?;
            state.part::<ChatState>().cache.forget(&b.object_key);
            purged += b.messages as u64;
        }
    }
}
