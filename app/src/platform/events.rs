//! The outlet through which a capability publishes its domain events (`user:new`,
//! `chat:message`, `event:created`, …) inside its own transaction, without knowing who
//! delivers them. The broker installs itself as the outlet at start-up; platform and the
//! producers never name it, so the dependency runs one way: broker → accounts, and no
//! capability → broker.

use super::db::WriteTxn;
use crate::error::AppResult;

#[async_trait::async_trait]
pub trait EventOutlet: Send + Sync {
    /// Publishes `payloads` on `topic`, in this order, as part of `txn`: they are
    /// delivered if and only if `txn` commits.
    async fn publish(&self, txn: &WriteTxn, topic: &str, payloads: &[serde_json::Value]) -> AppResult<()>;
}
