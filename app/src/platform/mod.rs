//! Server-side foundation shared by every capability: database, object store, jobs,
//! live changes, HTTP plumbing and configuration. Compiled only with `ssr`.

pub mod backoff;
pub mod changes;
pub mod crypto;
pub mod db;
pub mod events;
pub mod group_commit;
pub mod guards;
pub mod http;
pub mod jobs;
pub mod object_store;
pub mod parts;
pub mod rate_limit;
pub mod secrets;
pub mod settings;
pub mod state;
pub mod targets;
pub mod time;
