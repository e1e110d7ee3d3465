//! The pub/sub webhook broker: topics, subscribers, strictly ordered signed delivery with
//! retries, a delivery log and replay.

pub mod domain;
mod api;
mod views;

ssr_modules! {
    pub mod admin;
    pub mod delivery;
    pub mod demo;
    pub mod jobs;
    pub mod http;
    pub mod log;
    pub mod publish;
    pub mod settings;
    pub mod service;
    pub mod signature;
    pub mod store;
}

pub use domain::*;
pub use views::{BrokerPage, SubscriberPage};
pub use api::*;
