//! Scheduler: users' calendars of events, a REST API, week/month calendar pages in the
//! viewer's time zone, and iCal feeds. Every change is published to the broker.

pub mod domain;
mod api;
mod views;

#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod ical;
#[cfg(feature = "ssr")]
mod layout;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;

pub use domain::*;
pub use views::{CalendarScreen, FeedCard};
pub use api::*;
