//! Group commit: many requests, one transaction.
//!
//! Where one commit per request is the bound (a durable COMMIT on MySQL, the one writer
//! on SQLite), a request whose input is already checked is queued instead; a few writers
//! each take whatever is queued (up to the batch size) and write it in one transaction.
//! Under load a commit carries many requests; when idle a request waits for no window,
//! since a free writer takes it at once.
//!
//! Each request still gets its own answer: its own value once the batch committed, or
//! its own error — a batch that fails for anything but a transient conflict (retried
//! whole) is written again request by request, so one bad row fails only itself.

use crate::error::{AppError, AppResult, DB_CONFLICT};
use crate::platform::db::{retry_pause, Db, WriteTxn, RETRIES};
use futures::future::BoxFuture;
use sea_orm::DbBackend;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// What one kind of request writes, for a whole batch at once.
pub trait Batch: Send + Sync + 'static {
    type Request: Send + Sync + 'static;
    type Answer: Send + 'static;
    /// Names the work in logs and errors ("chat posts").
    const WHAT: &'static str;
    /// Most requests one transaction carries.
    const MAX: usize;

    /// The statements for `requests` in `txn`; one answer per request, in their order.
    fn write<'a>(&'a self, txn: &'a WriteTxn, requests: &'a [Self::Request]) -> BoxFuture<'a, AppResult<Vec<Self::Answer>>>;

    /// Undoes, after the commit, what the batch wrote for one request whose caller left
    /// (hung up, timed out) while the batch was being written — what rolling back that
    /// request's own transaction would have undone. Nothing, unless a kind says otherwise.
    fn unanswered<'a>(&'a self, _db: &'a Db, _answer: Self::Answer) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Requests waiting for a writer; beyond this one is refused with 503 (back-pressure).
const QUEUE_DEPTH: usize = 4096;

type Queued<B> = (<B as Batch>::Request, oneshot::Sender<AppResult<<B as Batch>::Answer>>);

/// The queue in front of one kind of batch's writers (one per process, in the app state).
pub struct GroupCommit<B: Batch> {
    tx: mpsc::Sender<Queued<B>>,
}

impl<B: Batch> Clone for GroupCommit<B> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone() }
    }
}

impl<B: Batch> GroupCommit<B> {
    /// Starts the writers; they stop when the last handle to the queue is dropped.
    pub fn start(db: Db, batch: B) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let rx = Arc::new(Mutex::new(rx));
        let batch = Arc::new(batch);
        // SQLite has one writer at a time anyway: one writer makes the largest batches.
        // MySQL commits in parallel: a few writers keep commits overlapping.
        let writers = if db.backend() == DbBackend::Sqlite { 1 } else { 4 };
        for _ in 0..writers {
            tokio::spawn(writer(db.clone(), batch.clone(), rx.clone()));
        }
        Self { tx }
    }

    /// Writes `request` with whatever else is queued; its answer once committed.
    pub async fn submit(&self, request: B::Request) -> AppResult<B::Answer> {
        let (answer, answered) = oneshot::channel();
        self.tx.try_send((request, answer)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AppError::unavailable(format!("too many {} waiting; retry in a moment", B::WHAT)),
            mpsc::error::TrySendError::Closed(_) => AppError::unavailable("the server is shutting down"),
        })?;
        answered.await.map_err(|_| AppError::internal_because(format!("the writer of {} stopped before answering", B::WHAT)))?
    }
}

async fn writer<B: Batch>(db: Db, batch: Arc<B>, queue: Arc<Mutex<mpsc::Receiver<Queued<B>>>>) {
    let mut taken = Vec::with_capacity(B::MAX);
    loop {
        // One writer waits on the queue at a time and takes everything waiting.
        if queue.lock().await.recv_many(&mut taken, B::MAX).await == 0 {
            return;
        }
        // A request whose caller is gone (timed out, hung up) while it waited is not
        // written: the caller was told it failed.
        let (requests, answers): (Vec<B::Request>, Vec<_>) = taken.drain(..).filter(|(_, answer)| !answer.is_closed()).unzip();
        if requests.is_empty() {
            continue;
        }
        match write(&db, &*batch, &requests).await {
            Ok(values) => {
                for (answer, value) in answers.into_iter().zip(values) {
                    if let Err(Ok(value)) = answer.send(Ok(value)) {
                        batch.unanswered(&db, value).await;
                    }
                }
            }
            // A statement failed, so nothing was committed: one request may be the cause,
            // and each is tried alone to get its own answer. (Not when the database is
            // away or kept conflicting: that is no request's fault.)
            Err(Failure::Statement(e)) if requests.len() > 1 && e.status != 503 => {
                tracing::warn!(error = %e.message, requests = requests.len(), what = B::WHAT, "a batch failed; writing it request by request");
                for (request, answer) in requests.into_iter().zip(answers) {
                    // As in a batch: whoever left meanwhile is not written, and what was
                    // written for whoever leaves while it is written is undone.
                    if answer.is_closed() {
                        continue;
                    }
                    let alone = write(&db, &*batch, std::slice::from_ref(&request)).await.and_then(|mut values| {
                        values.pop().ok_or_else(|| Failure::Statement(AppError::internal_because(format!("no answer for one of {}", B::WHAT))))
                    });
                    if let Err(Ok(value)) = answer.send(alone.map_err(Failure::into_error)) {
                        batch.unanswered(&db, value).await;
                    }
                }
            }
            // No connection, or the commit itself failed (it may even have succeeded):
            // writing again could write twice, so every request gets the error.
            Err(failure) => {
                let e = failure.into_error();
                tracing::error!(error = %e.message, requests = requests.len(), what = B::WHAT, "a batch could not be written");
                for answer in answers {
                    let _ = answer.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Why a batch was not written, and so whether trying its requests again is safe.
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

/// One transaction for `requests`. A deadlock or lock timeout is retried whole (it
/// rolled back).
#[tracing::instrument(skip_all, fields(what = B::WHAT, requests = requests.len()))]
async fn write<B: Batch>(db: &Db, batch: &B, requests: &[B::Request]) -> Result<Vec<B::Answer>, Failure> {
    let mut attempt = 0;
    loop {
        let txn = db.write_txn().await.map_err(|e| Failure::Transaction(e.into()))?;
        match batch.write(&txn, requests).await {
            Ok(values) if values.len() == requests.len() => {
                return txn.commit().await.map(|()| values).map_err(|e| Failure::Transaction(e.into()));
            }
            Ok(values) => {
                let why = format!("{} answers for {} of {}", values.len(), requests.len(), B::WHAT);
                return Err(Failure::Statement(AppError::internal_because(why)));
            }
            // Db::retrying's policy, but only for what is known to have rolled back: a
            // failed commit may have committed, and is never run again.
            Err(e) if e.code == DB_CONFLICT && attempt < RETRIES => {
                drop(txn); // rolls back
                attempt += 1;
                tokio::time::sleep(retry_pause(attempt)).await;
            }
            Err(e) => return Err(Failure::Statement(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;
    use tokio::sync::Notify;

    /// A request of the fake batch: it fails the batch it is in, or holds its write until
    /// released — in a batch, or written alone.
    #[derive(Default)]
    struct Req {
        id: u32,
        fails: bool,
        hold_in_batch: Option<Arc<Notify>>,
        hold_alone: Option<Arc<Notify>>,
    }

    /// Writes nothing; records each write's request ids and each unanswered answer.
    #[derive(Default, Clone)]
    struct Fake {
        writes: Arc<StdMutex<Vec<Vec<u32>>>>,
        unanswered: Arc<StdMutex<Vec<u32>>>,
    }

    impl Batch for Fake {
        type Request = Req;
        type Answer = u32;
        const WHAT: &'static str = "fakes";
        const MAX: usize = 16;

        fn write<'a>(&'a self, _txn: &'a WriteTxn, requests: &'a [Req]) -> BoxFuture<'a, AppResult<Vec<u32>>> {
            Box::pin(async move {
                self.writes.lock().unwrap().push(requests.iter().map(|r| r.id).collect());
                for r in requests {
                    let hold = if requests.len() > 1 { &r.hold_in_batch } else { &r.hold_alone };
                    if let Some(gate) = hold {
                        gate.notified().await;
                    }
                }
                if requests.iter().any(|r| r.fails) {
                    return Err(AppError::invalid("id", "this one fails"));
                }
                Ok(requests.iter().map(|r| r.id).collect())
            })
        }

        fn unanswered<'a>(&'a self, _db: &'a Db, answer: u32) -> BoxFuture<'a, ()> {
            self.unanswered.lock().unwrap().push(answer);
            Box::pin(async {})
        }
    }

    /// Waits for `what` to come true (an event, polled), for at most 10 s.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < give_up, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// When a failed batch is written request by request, a caller gone meanwhile is not
    /// written, and what was written for a caller who left during its own write is undone
    /// (`unanswered`) — as in a batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_one_by_one_fallback_skips_and_undoes_for_callers_gone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display())).await.unwrap();
        let fake = Fake::default();
        let (writes, unanswered) = (fake.writes.clone(), fake.unanswered.clone());
        let queue = GroupCommit::start(db, fake);
        let written = |n: usize| writes.lock().unwrap().len() >= n;
        let submit = |req: Req| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.submit(req).await })
        };

        // 1 holds the (only, on SQLite) writer while 2, 3 and 4 queue up behind it.
        let (first, in_batch, alone) = (Arc::new(Notify::new()), Arc::new(Notify::new()), Arc::new(Notify::new()));
        let one = submit(Req { id: 1, hold_alone: Some(first.clone()), ..Default::default() });
        until("1 being written", || written(1)).await;
        let two = submit(Req { id: 2, fails: true, hold_in_batch: Some(in_batch.clone()), ..Default::default() });
        let three = submit(Req { id: 3, hold_alone: Some(alone.clone()), ..Default::default() });
        let four = submit(Req { id: 4, ..Default::default() });
        until("2, 3 and 4 queued", || queue.tx.capacity() == QUEUE_DEPTH - 3).await;
        first.notify_one();
        assert_eq!(one.await.unwrap().unwrap(), 1);

        // The batch 2, 3, 4 is being written; 4's caller leaves before it fails.
        until("the batch being written", || written(2)).await;
        four.abort();
        assert!(four.await.unwrap_err().is_cancelled());
        in_batch.notify_one();
        // Alone: 2 fails on its own; 3 is being written when its caller leaves.
        until("3 written alone", || written(4)).await;
        three.abort();
        assert!(three.await.unwrap_err().is_cancelled());
        alone.notify_one();
        assert_eq!(two.await.unwrap().unwrap_err().status, 400);

        // A later request, answered: whatever the writer did before it is done.
        assert_eq!(submit(Req { id: 5, ..Default::default() }).await.unwrap().unwrap(), 5);
        assert_eq!(*writes.lock().unwrap(), [vec![1], vec![2, 3, 4], vec![2], vec![3], vec![5]], "4 was written after its caller left");
        assert_eq!(*unanswered.lock().unwrap(), [3], "3's write was not undone");
    }
}
