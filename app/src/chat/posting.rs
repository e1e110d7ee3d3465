//! Group commit for chat: posts, and inbox reads (a read expires what it returns, so it
//! writes). With one transaction each, `POST /chat` and `GET /chats/{u}` are bound by
//! commits; through [`crate::platform::group_commit`] concurrent requests share one. A post's batch is one
//! insert per message, then one publish and one change-log insert for all of them; a
//! read's batch locks each inbox once, expires what it returns with one update and
//! records one change per inbox.

use super::store::message;
use crate::accounts::domain::Username;
use crate::error::AppResult;
use crate::platform::changes;
use super::service::{InboxRead, INBOX_PAGE, STATEMENT_CHUNK};
use crate::platform::db::{for_update, insert_ids, Db, WriteTxn};
use crate::platform::group_commit::Batch;
use crate::platform::time::{now_ms, to_rfc3339};
use futures::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::{BTreeMap, HashMap};


/// A post ready to be written: every field already checked.
pub(super) struct NewPost {
    pub recipient: Username,
    pub sender_id: i64,
    pub sender: String,
    pub text: String,
    pub created_at: i64,
    pub expiration_date: i64,
}

impl NewPost {
    fn row(&self) -> message::ActiveModel {
        message::ActiveModel {
            username: Set(self.recipient.to_string()),
            sender_id: Set(Some(self.sender_id)),
            sender: Set(Some(self.sender.clone())),
            text: Set(self.text.clone()),
            created_at: Set(self.created_at),
            expiration_date: Set(self.expiration_date),
            ..Default::default()
        }
    }

    /// The `chat:message` payload.
    fn event(&self, id: i64) -> serde_json::Value {
        serde_json::json!({
            "id": id, "username": self.recipient.as_str(), "sender": self.sender, "text": self.text,
            "created_at": to_rfc3339(self.created_at), "expiration_date": to_rfc3339(self.expiration_date),
        })
    }
}

/// Chat posts, written in batches (see [`crate::platform::group_commit`]).
pub(super) struct Posts {
    /// Whether the batch's rows go in with one `INSERT … RETURNING id`.
    pub returning: bool,
}

impl Batch for Posts {
    type Request = NewPost;
    type Answer = i64;
    const WHAT: &'static str = "chat posts";
    const MAX: usize = 256;

    fn write<'a>(&'a self, txn: &'a WriteTxn, posts: &'a [NewPost]) -> BoxFuture<'a, AppResult<Vec<i64>>> {
        Box::pin(statements(txn, posts, self.returning))
    }
}

async fn statements(txn: &WriteTxn, posts: &[NewPost], returning: bool) -> AppResult<Vec<i64>> {
    let ids = insert_ids(&**txn, returning, posts.iter().map(NewPost::row).collect(), |row| row.text.try_as_ref().map_or(0, String::len)).await?;
    let events: Vec<serde_json::Value> = posts.iter().zip(&ids).map(|(p, id)| p.event(*id)).collect();
    txn.publish_all("chat:message", &events).await?;
    let inboxes: Vec<(String, serde_json::Value)> =
        posts.iter().zip(&ids).map(|(p, id)| (super::service::channel(p.recipient.as_str()), serde_json::json!({"posted": id}))).collect();
    changes::record_many(&**txn, &inboxes).await?;
    Ok(ids)
}

/// Inbox reads, written in batches (see [`crate::platform::group_commit`]): each returns the next page of
/// its inbox's unexpired messages and expires them.
pub(super) struct Reads;

impl Batch for Reads {
    type Request = Username;
    type Answer = InboxRead;
    const WHAT: &'static str = "inbox reads";
    const MAX: usize = 128;

    fn write<'a>(&'a self, txn: &'a WriteTxn, inboxes: &'a [Username]) -> BoxFuture<'a, AppResult<Vec<InboxRead>>> {
        Box::pin(expire_pages(txn, inboxes))
    }

    /// A reader gone before its page reached it: the page's messages wait again, as if
    /// the read had never happened (unless something changed them since).
    fn unanswered<'a>(&'a self, db: &'a Db, read: InboxRead) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = restore(db, &read).await {
                tracing::error!(error = %e.message, messages = read.messages.len(), "could not put back an inbox page its reader never got");
            }
        })
    }
}

async fn restore(db: &Db, read: &InboxRead) -> AppResult<()> {
    let Some(first) = read.messages.first() else { return Ok(()) };
    let (username, read_at) = (first.username.clone(), first.expiration_date);
    crate::db_write!(db, |txn| {
        for (id, was) in &read.expired_from {
            message::Entity::update_many()
                .col_expr(message::Column::ExpirationDate, Expr::value(*was))
                .filter(message::Column::Id.eq(*id))
                .filter(message::Column::ExpirationDate.eq(read_at))
                .exec(&*txn)
                .await?;
        }
        let ids: Vec<i64> = read.expired_from.iter().map(|(id, _)| *id).collect();
        changes::record(&*txn, &super::service::channel(&username), &serde_json::json!({"unread": ids})).await?;
        Ok(())
    })?;
    tracing::warn!(messages = read.expired_from.len(), "an inbox reader left before its page reached it; the page waits again");
    Ok(())
}

/// The reads of `inboxes`, in order: each inbox's unexpired messages are locked once,
/// and its reads get consecutive pages of them, so two reads never return the same
/// message — in one batch or in two batches at once (which wait on each other's locks).
pub(super) async fn expire_pages(txn: &WriteTxn, inboxes: &[Username]) -> AppResult<Vec<InboxRead>> {
    let page = INBOX_PAGE as usize;
    // Inboxes are locked in name order, so two batches never wait on each other in a cycle.
    let mut reads: BTreeMap<&str, usize> = BTreeMap::new();
    for name in inboxes {
        *reads.entry(name.as_str()).or_default() += 1;
    }
    let now = now_ms();
    let mut unexpired: HashMap<&str, Vec<message::Model>> = HashMap::with_capacity(reads.len());
    for (&name, &count) in &reads {
        let q = message::Entity::find()
            .filter(message::Column::Username.eq(name))
            .filter(message::Column::ExpirationDate.gt(now))
            .order_by_asc(message::Column::Id)
            .limit((count * page + 1) as u64);
        unexpired.insert(name, for_update(q, txn.get_database_backend()).all(&**txn).await?);
    }
    // The rows are ours now. A reader that held them a moment ago expired them at its own
    // `now`, which may be later than ours (we waited on its locks): check them again
    // against the clock as it is once the locks are held.
    let now = now_ms();
    // An inbox whose fetch came back full has more waiting, whatever the check drops.
    let mut full: HashMap<&str, bool> = HashMap::with_capacity(reads.len());
    for (name, rows) in unexpired.iter_mut() {
        full.insert(*name, rows.len() > reads[name] * page);
        rows.retain(|m| m.expiration_date > now);
    }
    let mut handed: HashMap<&str, usize> = HashMap::with_capacity(reads.len());
    let mut answers = Vec::with_capacity(inboxes.len());
    for name in inboxes {
        let rows = &unexpired[name.as_str()];
        let start = handed.get(name.as_str()).copied().unwrap_or(0);
        let end = Ord::min(start + page, rows.len());
        handed.insert(name.as_str(), end);
        let mut messages = rows[start..end].to_vec();
        let expired_from = messages.iter().map(|m| (m.id, m.expiration_date)).collect();
        messages.iter_mut().for_each(|m| m.expiration_date = now);
        answers.push(InboxRead { messages, has_more: rows.len() > end || full[name.as_str()], expired_from });
    }
    let read: Vec<(&str, Vec<i64>)> = handed
        .iter()
        .filter(|(_, &end)| end > 0)
        .map(|(&name, &end)| (name, unexpired[name][..end].iter().map(|m| m.id).collect()))
        .collect();
    let ids: Vec<i64> = read.iter().flat_map(|(_, ids)| ids.iter().copied()).collect();
    for chunk in ids.chunks(STATEMENT_CHUNK) {
        message::Entity::update_many()
            .col_expr(message::Column::ExpirationDate, Expr::value(now))
            .filter(message::Column::Id.is_in(chunk.to_vec()))
            .exec(&**txn)
            .await?;
    }
    let changes: Vec<(String, serde_json::Value)> =
        read.into_iter().map(|(name, ids)| (super::service::channel(name), serde_json::json!({"read": ids}))).collect();
    changes::record_many(&**txn, &changes).await?;
    Ok(answers)
}
