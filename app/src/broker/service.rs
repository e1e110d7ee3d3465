//! The broker's use cases, by seam: [`publish`](super::publish) (publishing and
//! sequencing), [`admin`](super::admin) (topics, subscribers, subscriptions) and
//! [`log`](super::log) (the delivery log, replay, retention); lanes are stored by
//! [`store`](super::store), delivered by [`delivery`](super::delivery). This module holds
//! what they share and re-exports them, so entry points name one place.
//!
//! Ordering model. A *lane* is one (subscription, topic) pair; each delivery of a message
//! to a subscriber sits in exactly one lane. Publishing inserts the message into the
//! outbox in the producer's transaction; the sequencer gives it the topic's next sequence
//! number once committed and appends one pending delivery to every matching lane, in one
//! transaction, so a sequenced message exists together with its work or not at all.
//! Lanes are delivered head first, one request in flight per lane, which is what keeps
//! the topic's order per (topic, subscriber).

pub use super::admin::*;
pub use super::log::*;
pub use super::publish::{install, publish_as, publish_events, send_test_message, PublishQueue, Published, Sequencer, DISPATCHER_WAKER, SEQUENCER_WAKER};

/// Largest payload accepted for publishing (serialized JSON).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// How long a rotated-out secret keeps signing.
pub const ROTATION_GRACE_MS: i64 = 24 * 3600 * 1000;
/// Most messages one replay-since call re-enqueues.
pub const REPLAY_LIMIT: u64 = 10_000;
/// Most rows or ids one statement carries: SQLite binds at most 32,766 values and MySQL
/// 65,535, and a statement that grows with the data is one a user can make fail.
pub const CHUNK: usize = 500;

/// Live-page channel for a subscriber's deliveries.
pub fn channel(subscriber_id: i64) -> String {
    format!("broker/{subscriber_id}/")
}
