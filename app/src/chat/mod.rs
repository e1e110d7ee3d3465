//! Chat: expiring messages left for a user. Hot in the database while unexpired, moved to
//! cold storage (the object store) by a background job once expired, readable by id
//! forever after.

pub mod domain;
mod api;
mod views;

#[cfg(feature = "ssr")]
pub mod cold;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod jobs;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod posting;
#[cfg(feature = "ssr")]
pub mod settings;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;

pub use domain::*;
pub use views::{InboxPage, MessagePage};
pub use api::*;
