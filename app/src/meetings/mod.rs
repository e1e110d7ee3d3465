//! Meetings feed: booking webhooks (Calendly v2) come in, are verified, stored verbatim,
//! deduplicated and folded into one current state per meeting, which open pages show live.

pub mod domain;
mod api;
mod views;

#[cfg(feature = "ssr")]
pub mod calendly;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod jobs;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod settings;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;

pub use domain::*;
pub use views::MeetingsPage;
pub use api::*;
