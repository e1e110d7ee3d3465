//! The meetings feed's demo on the embedded run: sample Calendly webhooks, signed with the
//! development key and taken through the real intake (verified, stored, deduplicated,
//! folded and published like any delivery), and the page's "Send a test booking".
//! Sample meetings are named "(demo)" and use `example.com` addresses.

use super::calendly;
use super::service::{self, Intake};
use super::settings::MeetingsSettings;
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::state::AppState;
use crate::platform::time::{now_ms, to_rfc3339};
use serde_json::{json, Value};

/// The job that seeds the demo.
pub const SEED_JOB: &str = "meetings.seed_demo";

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// One sample booking: who, when (from now), and whether it was canceled.
#[derive(Clone)]
struct Sample {
    id: String,
    name: &'static str,
    email: &'static str,
    starts_in_ms: i64,
    canceled: bool,
}

/// A Calendly v2 `invitee.created` (or `.canceled`) delivery for `s`.
fn delivery(s: &Sample, now: i64) -> Value {
    let event_uri = format!("https://api.calendly.com/scheduled_events/demo-{}", s.id);
    let start = now + s.starts_in_ms;
    let mut payload = json!({
        "uri": format!("{event_uri}/invitees/demo-{}", s.id),
        "email": s.email,
        "name": s.name,
        "timezone": "Europe/Berlin",
        "rescheduled": false,
        "scheduled_event": {
            "uri": event_uri,
            "name": "30 minute meeting (demo)",
            "start_time": to_rfc3339(start),
            "end_time": to_rfc3339(start + 30 * MINUTE_MS),
            "location": {"type": "google_conference", "join_url": "https://meet.example.com/demo"},
            "event_memberships": [{"user_email": "host@example.com"}],
        },
    });
    if s.canceled {
        payload["cancellation"] = json!({"canceled_by": s.name, "reason": "Sample cancellation (demo)", "canceler_type": "invitee"});
    }
    let event = if s.canceled { calendly::INVITEE_CANCELED } else { calendly::INVITEE_CREATED };
    json!({"event": event, "created_at": to_rfc3339(now), "payload": payload})
}

/// Takes `body` through the real intake, signed with the development key.
async fn deliver(state: &AppState, body: &Value) -> AppResult<Intake> {
    let key = state
        .settings
        .part::<MeetingsSettings>()
        .signing_key
        .clone()
        .ok_or_else(|| AppError::unavailable("webhook intake is not configured: set CALENDLY_WEBHOOK_SIGNING_KEY"))?;
    let body = serde_json::to_vec(body).map_err(|e| AppError::internal_because(format!("encoding a sample booking: {e}")))?;
    let t = now_ms() / 1000;
    let header = format!("t={t},v1={}", calendly::sign(&key, t, &body));
    service::intake(state, service::Sender::App, Some(&header), body.into()).await
}

pub fn register(jobs: &mut crate::platform::jobs::JobRegistry) {
    jobs.register(SEED_JOB, std::time::Duration::from_secs(300), 3, |state, _| async move {
        seed(&state).await.map_err(AppError::into_failure)
    });
}

/// Seeds past, upcoming and canceled sample meetings (only where test bookings are on:
/// the development key of a demo installation). Running it again delivers the same
/// invitees again, which the intake recognises as duplicates: nothing changes.
#[tracing::instrument(skip(state))]
pub async fn seed(state: &AppState) -> AppResult<()> {
    if !state.settings.part::<MeetingsSettings>().test_bookings {
        return Ok(());
    }
    let samples = [
        Sample { id: "1".into(), name: "Ada Lovelace (demo)", email: "ada@example.com", starts_in_ms: -2 * DAY_MS, canceled: false },
        Sample { id: "2".into(), name: "Grace Hopper (demo)", email: "grace@example.com", starts_in_ms: DAY_MS, canceled: false },
        Sample { id: "3".into(), name: "Alan Turing (demo)", email: "alan@example.com", starts_in_ms: 2 * DAY_MS + 90 * MINUTE_MS, canceled: false },
        Sample { id: "4".into(), name: "Katherine Johnson (demo)", email: "katherine@example.com", starts_in_ms: 3 * DAY_MS, canceled: true },
    ];
    let now = now_ms();
    for s in &samples {
        if s.canceled {
            // Booked first, then canceled: the feed folds both into one canceled meeting.
            deliver(state, &delivery(&Sample { canceled: false, ..s.clone() }, now)).await?;
        }
        deliver(state, &delivery(s, now)).await?;
    }
    tracing::info!(meetings = samples.len(), "sample meetings delivered for the demo");
    Ok(())
}

/// "Send a test booking" on the meetings page: one new sample booking, starting in an
/// hour, through the real intake. Only where the signing key is the generated
/// development key of a demo installation: with a real key, a booking the app signed
/// itself would be a forgery in a real feed (and go on to the broker's subscribers).
#[tracing::instrument(skip(state, caller), fields(caller = %caller.username()))]
pub async fn send_test_booking(state: &AppState, caller: &Caller) -> AppResult<()> {
    if !state.settings.part::<MeetingsSettings>().test_bookings {
        return Err(AppError::not_found("test bookings (they are only on the embedded run)"));
    }
    state.part::<TestBookingLimiter>().0.take(&caller.id().to_string(), "test bookings from this account")?;
    let sample = Sample {
        id: format!("test-{}", crate::platform::secrets::random_token(9)),
        name: "Test Booking (demo)",
        email: "test.booking@example.com",
        starts_in_ms: 60 * MINUTE_MS,
        canceled: false,
    };
    deliver(state, &delivery(&sample, now_ms())).await?;
    Ok(())
}

/// Test bookings per account and minute (they are real rows).
#[derive(Clone)]
pub struct TestBookingLimiter(pub crate::platform::rate_limit::RateLimiter);

impl Default for TestBookingLimiter {
    fn default() -> Self {
        Self(crate::platform::rate_limit::RateLimiter::new(30, std::time::Duration::from_secs(60)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_a_delivery_the_intake_parses() {
        let s = Sample { id: "9".into(), name: "N (demo)", email: "n@example.com", starts_in_ms: DAY_MS, canceled: true };
        let body = serde_json::to_vec(&delivery(&s, 1_800_000_000_000)).unwrap();
        let envelope = calendly::parse_envelope(&body).unwrap();
        match calendly::facts(&envelope).unwrap() {
            calendly::Fact::Invitee(f) => {
                assert!(f.canceled);
                assert_eq!(f.start_time, 1_800_000_000_000 + DAY_MS);
                assert_eq!(f.end_time - f.start_time, 30 * MINUTE_MS);
                assert_eq!(f.name, "N (demo)");
                assert_eq!(f.location, "https://meet.example.com/demo");
            }
            other => panic!("{other:?}"),
        }
    }
}
