//! The pub/sub webhook broker: topics, subscribers, strictly ordered signed delivery with
//! retries, a delivery log and replay.

pub mod domain;

#[cfg(feature = "ssr")]
pub mod delivery;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod signature;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod targets;

pub use domain::*;
