//! Scheduler: users' calendars of events, a REST API, week/month calendar pages in the
//! viewer's time zone, and iCal feeds. Every change is published to the broker.

pub mod domain;
pub mod repeat;
mod api;
mod booking_views;
mod subscription_views;
mod views;

ssr_modules! {
    pub mod booking;
    pub mod demo;
    pub mod feeds;
    pub mod http;
    pub mod ical;
    pub mod ical_read;
    pub mod import;
    mod layout;
    pub mod occurrences;
    pub mod recurrence;
    mod series;
    pub mod service;
    pub mod settings;
    pub mod store;
    pub mod subscriptions;
}

pub use domain::*;
pub use booking_views::{BookingCard, BookingScreen, CancelBookingScreen};
pub use views::{CalendarScreen, FeedCard};
pub use subscription_views::SubscriptionsCard;
pub use api::*;
