//! The HTTP accept loop. `axum::serve` gives hyper no timer, so a client that opens a
//! connection and sends its headers a byte a minute (slowloris) — or nothing at all —
//! holds a socket and a task for as long as it likes. Here each connection is served by
//! hyper's HTTP/1 server with a header-read timeout, which runs from the moment the
//! connection waits for a request head: a silent connection, a slow header and an idle
//! keep-alive are all closed after it. (HTTP/1 only: the version sniffing of hyper's
//! auto builder waits for bytes with no timer, and the app sits behind a proxy that speaks
//! HTTP/1.1 to it anyway.) At most `max_connections` are served at once; beyond that the
//! loop stops accepting and the kernel's backlog waits. The per-request timeout
//! (`guards::enforce_limits`) covers the rest.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use tokio::sync::Semaphore;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves `app` on `listener` until `stop` resolves, then lets open connections finish
/// (each is told to close after its current request) for at most `drain`.
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// How long open connections get to finish after `stop`.
    pub drain: Duration,
}

pub async fn serve(listener: TcpListener, app: Router, limits: Limits, stop: impl Future<Output = ()>) -> std::io::Result<()> {
    let (closing_tx, closing_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = watch::channel(());
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let header_read_timeout = limits.header_read_timeout;
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the connection semaphore is never closed"),
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |req: axum::http::Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let mut closing = closing_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            tokio::pin!(conn);
            let res = tokio::select! {
                res = conn.as_mut() => res,
                _ = async { let _ = closing.wait_for(|c| *c).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.as_mut().await
                }
            };
            if let Err(err) = res {
                tracing::debug!(error = %err, %peer, "connection ended with an error");
            }
            drop((done, slot));
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    drop(done_tx);
    // Every connection task holds a `done` sender: all dropped means all finished.
    let _ = tokio::time::timeout(limits.drain, async { while done_rx.changed().await.is_ok() {} }).await;
    Ok(())
}
