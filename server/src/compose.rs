//! Where the capabilities meet: each one's settings (read from the environment by the
//! capability itself) and in-process state are composed into the platform's `Settings`
//! and `AppState` here, and nowhere else. A capability added to the app gets its line
//! in `settings` and, if it keeps state, in `parts`.

use app::platform::db::Db;
use app::platform::parts::Parts;
use app::platform::rate_limit::RateLimiter;
use app::platform::settings::{Settings, Vars};
use app::scheduler::booking::Canceler;
use std::time::Duration;

/// Every setting, platform's and each capability's, from any source of variables.
pub fn settings_from_vars(lookup: &dyn Fn(&str) -> Option<String>) -> Settings {
    let mut settings = Settings::from_vars(lookup);
    let env = Vars(lookup);
    let embedded = settings.is_sqlite();
    let mut auth = app::accounts::settings::AuthSettings::from_vars(&env, embedded);
    auth.demo_welcome_jobs = vec![app::chat::demo::WELCOME_JOB];
    settings.parts.insert(auth);
    settings.parts.insert(app::broker::settings::BrokerSettings::from_vars(&env));
    settings.parts.insert(app::chat::settings::ChatSettings::from_vars(&env));
    settings.parts.insert(app::meetings::settings::MeetingsSettings::from_vars(&env));
    settings.parts.insert(app::scheduler::settings::SchedulerSettings::from_vars(&env));
    settings.parts.insert(app::wages::settings::WagesSettings::from_vars(&env));
    settings
}

/// Every setting from the process environment.
pub fn settings_from_env() -> Settings {
    settings_from_vars(&|name| std::env::var(name).ok())
}

/// The embedded run's generated secrets: the sealing key and the webhook signing key,
/// kept in `<data>/secrets/` (a no-op on MySQL, whose processes share configured ones).
pub fn with_dev_secrets(settings: Settings) -> Settings {
    let mut settings = settings.with_dev_secrets();
    let meetings = settings.part::<app::meetings::settings::MeetingsSettings>().clone().with_dev_key(&settings);
    settings.parts.insert(meetings);
    settings
}

/// Each capability's in-process state, started on `db`.
pub fn parts(settings: &Settings, db: &Db) -> Parts {
    Parts::default()
        .with(app::accounts::service::AuthGuard::new(settings.part()))
        .with(app::chat::service::ChatState::start(db))
        .with(app::broker::service::PublishQueue::start(db))
        .with(app::meetings::service::WebhookLimiter(RateLimiter::new(settings.http.webhook_rate_per_min, Duration::from_secs(60))))
        .with(app::wages::analytics::WageCopy::new())
        .with(crate::ops::BeaconLimiter::new())
        .with(app::broker::demo::Receiver::default())
        .with(app::meetings::demo::TestBookingLimiter::default())
        .with(app::system::sampling::History::default())
        .with(app::system::sampling::MetricsText(std::sync::Arc::new(|| crate::ops::recorder().render())))
        .with(app::scheduler::subscriptions::FileLimiter::new(settings.part()))
        .with(app::scheduler::booking::BookingParts {
            limiter: RateLimiter::new(settings.part::<app::scheduler::settings::SchedulerSettings>().booking_rate_per_min, Duration::from_secs(60)),
            meetings: std::sync::Arc::new(BookingsIntoMeetings),
        })
}

/// Bookings made on the scheduler's booking pages go into the meetings feed, as the
/// Calendly bookings there do (host: the page's owner).
struct BookingsIntoMeetings;

impl BookingsIntoMeetings {
    fn facts(m: &app::scheduler::booking::BookedMeeting, canceled: Option<Canceler>) -> app::meetings::calendly::InviteeFacts {
        let (by, reason, kind) = match canceled {
            Some(Canceler::Invitee) => (Some(m.invitee_name.clone()), Some("Canceled with the booking's link"), Some("invitee")),
            Some(Canceler::Host) => (Some(m.host.clone()), Some("Deleted from the host's calendar"), Some("host")),
            None => (None, None, None),
        };
        app::meetings::calendly::InviteeFacts {
            canceled: canceled.is_some(),
            invitee_uri: format!("{}/invitee", m.event_uri),
            event_uri: m.event_uri.clone(),
            event_name: m.name.clone(),
            name: m.invitee_name.clone(),
            email: m.invitee_email.clone(),
            timezone: m.invitee_zone.clone(),
            start_time: m.start,
            end_time: m.end,
            location: String::new(),
            host_email: m.host.clone(),
            rescheduled: false,
            old_invitee: None,
            new_invitee: None,
            canceled_by: by,
            cancel_reason: reason.map(str::to_owned),
            canceler_type: kind.map(str::to_owned),
        }
    }
}

#[async_trait::async_trait]
impl app::scheduler::booking::MeetingsOutlet for BookingsIntoMeetings {
    async fn booked(&self, txn: &app::platform::db::WriteTxn, m: &app::scheduler::booking::BookedMeeting) -> app::error::AppResult<()> {
        app::meetings::service::record_booking(txn, &Self::facts(m, None)).await
    }

    async fn canceled(&self, txn: &app::platform::db::WriteTxn, m: &app::scheduler::booking::BookedMeeting, by: Canceler) -> app::error::AppResult<()> {
        app::meetings::service::record_booking(txn, &Self::facts(m, Some(by))).await
    }
}
