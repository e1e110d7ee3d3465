//! Chat: expiring messages left for a user. Hot in the database while unexpired, moved to
//! cold storage (the object store) by a background job once expired, readable by id
//! forever after.

pub mod domain;
mod api;
mod views;

ssr_modules! {
    pub mod cold;
    pub mod demo;
    pub mod jobs;
    pub mod http;
    pub mod posting;
    pub mod settings;
    pub mod service;
    pub mod store;
}

pub use domain::*;
pub use views::{InboxPage, MessagePage};
pub use api::*;
