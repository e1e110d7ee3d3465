//! Meetings feed: booking webhooks (Calendly v2) come in, are verified, stored verbatim,
//! deduplicated and folded into one current state per meeting, which open pages show live.

pub mod domain;
mod api;
mod views;

ssr_modules! {
    pub mod calendly;
    pub mod demo;
    pub mod jobs;
    pub mod http;
    pub mod settings;
    pub mod service;
    pub mod store;
}

pub use domain::*;
pub use views::MeetingsPage;
pub use api::*;
