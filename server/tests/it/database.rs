//! The database connections themselves.

use crate::support::{mysql_base_url, Backend, TestApp};
use std::os::fd::{BorrowedFd, RawFd};

/// Every TCP connection of this process to MariaDB's port, with whether Nagle's
/// algorithm is off on it: the app's pools, the tests' own, and the test proxy's.
fn database_sockets(port: u16) -> Vec<bool> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else { continue };
        // SAFETY: only read through, never closed. Other tests in this process may close
        // the descriptor meanwhile (the calls below then fail) or reuse its number (then
        // they read the new socket's address and option, which is as good a sample).
        let socket = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&socket);
        let to_database = socket.peer_addr().ok().and_then(|a| a.as_socket()).is_some_and(|a| a.port() == port);
        if to_database {
            if let Ok(nodelay) = socket.tcp_nodelay() {
                found.push(nodelay);
            }
        }
    }
    found
}

/// Nagle's algorithm stays off on every database connection. With it on (sqlx 0.9.0
/// dropped `TCP_NODELAY`), a statement sent right behind a packet that gets no answer —
/// the close of a prepared statement evicted from the connection's cache — waited for
/// MariaDB's delayed ACK: 40 ms, and ~440 ms for a sequencer batch, once the caches of a
/// server that had run for a while were full.
#[tokio::test]
async fn database_connections_send_at_once() {
    let app = TestApp::spawn(Backend::MariaDb).await;
    app.state.db.ping().await.unwrap();
    let port = mysql_base_url().rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).unwrap_or(3306);
    let sockets = database_sockets(port);
    assert!(!sockets.is_empty(), "the app holds connections to MariaDB");
    assert!(sockets.iter().all(|nodelay| *nodelay), "TCP_NODELAY on each: {sockets:?}");
    app.stop().await;
}
