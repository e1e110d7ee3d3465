//! Group commit for chat posts.
//!
//! With one transaction per post, `POST /chat` is bound by commits: every post pays
//! BEGIN, its statements and a durable COMMIT of its own. Here a post, parsed and
//! checked by its caller, is queued; a few writers each take whatever is queued (up to
//! [`POST_BATCH`]) and write it in one transaction — one insert per message, then one
//! publish and one change-log insert for all of them. Under load a commit carries many
//! posts; when idle a post waits for no window, since a free writer takes it at once.
//!
//! Each post still gets its own answer: its id once the batch committed, or its own
//! error — a batch that fails for anything but a transient conflict (retried whole) is
//! written again post by post, so one bad row fails only itself.

use super::store::message;
use crate::accounts::domain::Username;
use crate::error::{AppError, AppResult, DB_CONFLICT};
use crate::platform::changes;
use crate::platform::db::{Db, WriteTxn};
use crate::platform::time::to_rfc3339;
use sea_orm::{ActiveValue::Set, DbBackend, EntityTrait};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Most posts one transaction carries.
const POST_BATCH: usize = 256;
/// Posts waiting for a writer; beyond this a post is refused with 503 (back-pressure).
const QUEUE_DEPTH: usize = 4096;

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

type Queued = (NewPost, oneshot::Sender<AppResult<i64>>);

/// The queue in front of the chat writers (one per process, in the app state).
#[derive(Clone)]
pub struct PostQueue {
    tx: mpsc::Sender<Queued>,
}

impl PostQueue {
    /// Starts the writers; they stop when the last handle to the queue is dropped.
    pub fn start(db: Db) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let rx = Arc::new(Mutex::new(rx));
        // SQLite has one writer at a time anyway: one writer makes the largest batches.
        // MySQL commits in parallel: a few writers keep commits overlapping.
        let writers = if db.backend() == DbBackend::Sqlite { 1 } else { 4 };
        for _ in 0..writers {
            tokio::spawn(writer(db.clone(), rx.clone()));
        }
        Self { tx }
    }

    /// Writes `post` with whatever else is queued; its id once committed.
    pub(super) async fn post(&self, post: NewPost) -> AppResult<i64> {
        let (answer, answered) = oneshot::channel();
        self.tx.try_send((post, answer)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AppError::unavailable("too many chat posts waiting; retry in a moment"),
            mpsc::error::TrySendError::Closed(_) => AppError::unavailable("the server is shutting down"),
        })?;
        answered.await.map_err(|_| AppError::internal_because("the chat writer stopped before answering"))?
    }
}

async fn writer(db: Db, queue: Arc<Mutex<mpsc::Receiver<Queued>>>) {
    let mut batch = Vec::with_capacity(POST_BATCH);
    loop {
        // One writer waits on the queue at a time and takes everything waiting.
        if queue.lock().await.recv_many(&mut batch, POST_BATCH).await == 0 {
            return;
        }
        // A post whose caller is gone (timed out, hung up) while it waited is not written:
        // the caller was told it failed.
        let (posts, answers): (Vec<NewPost>, Vec<_>) = batch.drain(..).filter(|(_, answer)| !answer.is_closed()).unzip();
        if posts.is_empty() {
            continue;
        }
        match write(&db, &posts).await {
            Ok(ids) => {
                for (answer, id) in answers.into_iter().zip(ids) {
                    let _ = answer.send(Ok(id));
                }
            }
            // A statement failed, so nothing was committed: one post's row may be the
            // cause, and each post is tried alone to get its own answer. (Not when the
            // database is away or kept conflicting: that is no row's fault.)
            Err(Failure::Statement(e)) if posts.len() > 1 && e.status != 503 => {
                tracing::warn!(error = %e.message, posts = posts.len(), "a batch of chat posts failed; writing them one by one");
                for (post, answer) in posts.into_iter().zip(answers) {
                    let alone = write(&db, std::slice::from_ref(&post)).await.map(|ids| ids[0]);
                    let _ = answer.send(alone.map_err(Failure::into_error));
                }
            }
            // No connection, or the commit itself failed (it may even have succeeded):
            // writing again could store the posts twice, so every post gets the error.
            Err(failure) => {
                let e = failure.into_error();
                tracing::error!(error = %e.message, posts = posts.len(), "a batch of chat posts could not be written");
                for answer in answers {
                    let _ = answer.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Why a batch was not written, and so whether trying its posts again is safe.
enum Failure {
    /// A statement before the commit failed: the transaction rolled back.
    Statement(AppError),
    /// No transaction could start, or its commit failed (its outcome unknown).
    Transaction(AppError),
}

impl Failure {
    fn into_error(self) -> AppError {
        match self {
            Failure::Statement(e) | Failure::Transaction(e) => e,
        }
    }
}

/// One transaction for `posts`: their rows, their `chat:message` publications and their
/// inboxes' change-log entries. Returns their ids in order. A deadlock or lock timeout
/// is retried whole (it rolled back).
#[tracing::instrument(skip_all, fields(posts = posts.len()))]
async fn write(db: &Db, posts: &[NewPost]) -> Result<Vec<i64>, Failure> {
    let mut attempt = 0;
    loop {
        let txn = db.write_txn().await.map_err(|e| Failure::Transaction(e.into()))?;
        match statements(&txn, posts).await {
            Ok(ids) => return txn.commit().await.map(|()| ids).map_err(|e| Failure::Transaction(e.into())),
            Err(e) if e.code == DB_CONFLICT && attempt < 4 => {
                drop(txn); // rolls back
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
            }
            Err(e) => return Err(Failure::Statement(e)),
        }
    }
}

async fn statements(txn: &WriteTxn, posts: &[NewPost]) -> AppResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(posts.len());
    for post in posts {
        ids.push(message::Entity::insert(post.row()).exec(&**txn).await?.last_insert_id);
    }
    let events: Vec<serde_json::Value> = posts.iter().zip(&ids).map(|(p, id)| p.event(*id)).collect();
    txn.publish_all("chat:message", &events).await?;
    let inboxes: Vec<(String, serde_json::Value)> =
        posts.iter().zip(&ids).map(|(p, id)| (super::service::channel(p.recipient.as_str()), serde_json::json!({"posted": id}))).collect();
    changes::record_many(&**txn, &inboxes).await?;
    Ok(ids)
}
