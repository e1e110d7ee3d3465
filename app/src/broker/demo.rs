//! The broker's demo on the embedded run (`SB_DEMO_DATA`): a topic, `demo:ping`, whose
//! subscriber is a receiver built into the app. The receiver checks every delivery's
//! signature exactly as a real endpoint must, and refuses a message's first attempts
//! when the message asks for it (`"refuse_attempts": n`), so deliveries, a retry with its
//! backoff, and the attempt log can all be watched on the subscriber's page at once.
//!
//! The receiver is the one loopback target the broker accepts without
//! `BROKER_ALLOWED_TARGETS`: `http://<this server's own address>/webhooks/demo-receiver/<id>`,
//! nothing else on loopback (see [`TargetPolicy::with_builtin`]).

use super::admin::{self, signing_secrets};
use super::domain::TopicName;
use super::settings::BrokerSettings;
use super::store::subscriber;
use crate::platform::targets::TargetPolicy;
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::state::AppState;
use crate::platform::time::now_ms;
use axum::http::HeaderMap;
use sea_orm::EntityTrait;
use crate::platform::rate_limit::RateLimiter;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

/// The job that seeds the demo.
pub const SEED_JOB: &str = "broker.seed_demo";
/// The demo's topic.
pub const TOPIC: &str = "demo:ping";
/// Where the receiver is mounted (its subscriber's id follows).
pub const RECEIVER_PREFIX: &str = "/webhooks/demo-receiver";
const RECEIVER_NAME: &str = "Demo receiver (built in)";
/// How far a signature's timestamp may be from the receiver's clock (the Standard
/// Webhooks libraries' default).
const TOLERANCE_SECS: i64 = 300;

/// The receiver's base URL for a server listening on `listen`: always an IP literal, so
/// the permission names one address and port, never a name that could resolve elsewhere;
/// written as the URL parser writes it (no `:80`), so stored and checked forms agree.
pub fn receiver_base(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let raw = format!("http://{}{RECEIVER_PREFIX}", SocketAddr::new(ip, listen.port()));
    reqwest::Url::parse(&raw).map(|u| u.to_string()).unwrap_or(raw)
}

/// The URL of the receiver for one subscriber.
fn receiver_url(base: &str, subscriber_id: i64) -> String {
    format!("{base}/{subscriber_id}")
}

/// The demo's subscriber, if seeded: the one named so among the demo topic's
/// subscriptions (served by the subscriptions' pattern index).
async fn demo_subscriber(state: &AppState) -> AppResult<Option<subscriber::Model>> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let subscriptions = super::store::subscription::Entity::find()
        .filter(super::store::subscription::Column::Pattern.eq(TOPIC))
        .all(&state.db.conn)
        .await?;
    for s in subscriptions {
        if let Some(found) = subscriber::Entity::find_by_id(s.subscriber_id).one(&state.db.conn).await? {
            if found.name == RECEIVER_NAME && found.url.contains(RECEIVER_PREFIX) {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// Seeds the demo, and resumes or repairs it on every start: the topic, the built-in
/// receiver as its subscriber (pointed at this server's current address), and three
/// messages, the second of which the receiver refuses twice before taking it. Each step
/// finds what an earlier run did (the messages by their idempotency keys), so a run cut
/// short is finished by the next and nothing is there twice.
#[tracing::instrument(skip(state))]
pub async fn seed(state: &AppState) -> AppResult<()> {
    let settings = state.settings.part::<BrokerSettings>();
    let Some(base) = settings.demo_receiver.clone() else { return Ok(()) };
    let operator = Caller::operator();
    admin::ensure_topic(&state.db.conn, &TopicName::parse(TOPIC)?, "demo: delivered to the built-in demo receiver").await?;
    let receiver = match demo_subscriber(state).await? {
        Some(s) if s.url == receiver_url(&base, s.id) => s,
        // The server's address changed since (another port, another process).
        Some(s) => admin::update_subscriber(state, &operator, s.id, None, Some(&receiver_url(&base, s.id))).await?,
        None => {
            let (created, _) = admin::create_subscriber(state, &operator, RECEIVER_NAME, &receiver_url(&base, 0)).await?;
            let created = admin::update_subscriber(state, &operator, created.id, None, Some(&receiver_url(&base, created.id))).await?;
            // Quick retries, so the refused message is seen taken within seconds.
            let options = admin::SubscriptionOptions { retry_base_ms: Some(3_000), retry_max_ms: Some(60_000), ..Default::default() };
            admin::subscribe(&state.db, &operator, created.id, TOPIC, options, settings.max_attempts).await?;
            created
        }
    };
    let messages = [
        serde_json::json!({"demo": true, "n": 1, "text": "hello from the Switchboard demo"}),
        serde_json::json!({"demo": true, "n": 2, "text": "the receiver refuses this one twice, then takes it", "refuse_attempts": 2}),
        serde_json::json!({"demo": true, "n": 3, "text": "delivered after 2, never before: order per topic and subscriber"}),
    ];
    for (n, payload) in messages.iter().enumerate() {
        super::publish::publish_as(state, &operator, TOPIC, payload, Some(&format!("demo-seed-{}", n + 1))).await?;
    }
    tracing::info!(subscriber = receiver.id, "broker demo seeded");
    Ok(())
}

/// The receiver's memory and its limit. Deliveries seen, by `webhook-id`, tell it which
/// attempt this is (Standard Webhooks does not number them): in memory, bounded, oldest
/// forgotten first — a demo. Requests per client address are limited before any lookup.
#[derive(Clone)]
pub struct Receiver {
    seen: Arc<Mutex<(HashMap<String, u32>, VecDeque<String>)>>,
    pub limiter: RateLimiter,
}

impl Default for Receiver {
    fn default() -> Self {
        Self { seen: Arc::default(), limiter: RateLimiter::new(REQUESTS_PER_MIN, std::time::Duration::from_secs(60)) }
    }
}

const RECEIPTS_KEPT: usize = 10_000;
/// Requests one client address may send the receiver per minute.
const REQUESTS_PER_MIN: u32 = 600;
/// Longest `webhook-id` taken (the broker's are `msg_` and a number).
const MAX_ID_BYTES: usize = 256;

impl Receiver {
    /// Counts one more attempt of `msg_id`, answering its number (1 for the first).
    fn count(&self, msg_id: &str) -> u32 {
        let mut guard = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (seen, order) = &mut *guard;
        if !seen.contains_key(msg_id) {
            if order.len() >= RECEIPTS_KEPT {
                if let Some(oldest) = order.pop_front() {
                    seen.remove(&oldest);
                }
            }
            order.push_back(msg_id.to_owned());
        }
        let n = seen.entry(msg_id.to_owned()).or_default();
        *n += 1;
        *n
    }
}

/// What the receiver answers (and so what the delivery log shows).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The delivery's `webhook-id`.
    pub received: String,
    /// The signature verified with the subscriber's secret.
    pub verified: bool,
    /// Which attempt of this message this was, as the receiver counts them.
    pub attempt: u32,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> AppResult<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::unauthorized(format!("the {name} header is missing")).on_field(name))
}

/// Takes one delivery for `subscriber_id`: 429 past the per-address limit, 404 unless the demo is on and that subscriber
/// is this receiver, 401 unless the Standard Webhooks signature verifies with its secret,
/// 503 for an attempt the message asked to be refused, else the receipt.
#[tracing::instrument(skip(state, headers, body))]
pub async fn receive(state: &AppState, client: Option<IpAddr>, subscriber_id: i64, headers: &HeaderMap, body: &[u8]) -> AppResult<Receipt> {
    let receiver = state.part::<Receiver>();
    receiver.limiter.take(&crate::platform::guards::address_key(client), "requests to the demo receiver from this address")?;
    let base = state.settings.part::<BrokerSettings>().demo_receiver.clone().ok_or_else(|| AppError::not_found("demo receiver"))?;
    let target = subscriber::Entity::find_by_id(subscriber_id)
        .one(&state.db.conn)
        .await?
        .filter(|s| s.url == receiver_url(&base, subscriber_id))
        .ok_or_else(|| AppError::not_found("demo receiver"))?;
    let msg_id = header(headers, "webhook-id")?;
    if msg_id.len() > MAX_ID_BYTES {
        return Err(AppError::invalid("webhook-id", format!("webhook-id is longer than {MAX_ID_BYTES} bytes")));
    }
    let timestamp: i64 = header(headers, "webhook-timestamp")?
        .parse()
        .map_err(|_| AppError::unauthorized("webhook-timestamp is not a number of seconds").on_field("webhook-timestamp"))?;
    let signature = header(headers, "webhook-signature")?;
    let now = now_ms();
    let verified = signing_secrets(&state.sealer, &target, now)?
        .iter()
        .any(|secret| super::signature::verify(secret, msg_id, timestamp, signature, body, now / 1000, TOLERANCE_SECS));
    if !verified {
        return Err(AppError::unauthorized("the webhook-signature does not verify with this subscriber's secret").on_field("webhook-signature"));
    }
    let attempt = receiver.count(msg_id);
    // The Standard Webhooks envelope carries the published payload as `data`.
    let refuse = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| v["data"]["refuse_attempts"].as_u64()).unwrap_or(0);
    if u64::from(attempt) <= refuse {
        return Err(AppError::unavailable(format!("refused on purpose: attempt {attempt} of the {refuse} this message asked to be refused")));
    }
    Ok(Receipt { received: msg_id.to_owned(), verified, attempt })
}

pub fn register(jobs: &mut crate::platform::jobs::JobRegistry) {
    jobs.register(SEED_JOB, std::time::Duration::from_secs(300), 3, |state, _| async move {
        seed(&state).await.map_err(AppError::into_failure)
    });
}

impl BrokerSettings {
    /// Where deliveries may go: `BROKER_ALLOWED_TARGETS`, plus the built-in demo receiver
    /// when the demo is on.
    pub fn target_policy(&self) -> TargetPolicy {
        TargetPolicy::new(&self.allowed_targets).with_builtin(self.demo_receiver.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_is_named_by_the_servers_own_address() {
        assert_eq!(receiver_base("0.0.0.0:3000".parse().unwrap()), "http://127.0.0.1:3000/webhooks/demo-receiver");
        assert_eq!(receiver_base("[::]:8080".parse().unwrap()), "http://[::1]:8080/webhooks/demo-receiver");
        assert_eq!(receiver_base("10.1.2.3:80".parse().unwrap()), "http://10.1.2.3/webhooks/demo-receiver", "as the URL parser writes it");
        let base = receiver_base("10.1.2.3:80".parse().unwrap());
        assert!(TargetPolicy::new(&[]).with_builtin(Some(base.clone())).check_url(&format!("{base}/7"), "url").is_ok());
    }

    #[test]
    fn only_the_receiver_itself_is_permitted() {
        let base = "http://127.0.0.1:3000/webhooks/demo-receiver";
        assert!(crate::platform::targets::is_builtin(base, "http://127.0.0.1:3000/webhooks/demo-receiver/12"));
        for other in [
            "http://127.0.0.1:3000/webhooks/demo-receiver",
            "http://127.0.0.1:3000/webhooks/demo-receiver/",
            "http://127.0.0.1:3000/webhooks/demo-receiver/12/../../../api/v1/users",
            "http://127.0.0.1:3000/webhooks/demo-receiver/12?x=1",
            "http://127.0.0.1:3000/webhooks/demo-receiver-other/12",
            "http://127.0.0.1:3001/webhooks/demo-receiver/12",
            "http://127.0.0.1:3000/api/v1/topics",
        ] {
            assert!(!crate::platform::targets::is_builtin(base, other), "{other}");
        }
        let policy = TargetPolicy::new(&[]).with_builtin(Some(base.into()));
        assert!(policy.check_url("http://127.0.0.1:3000/webhooks/demo-receiver/12", "url").is_ok());
        assert!(policy.check_url("http://127.0.0.1:3000/api/v1/topics", "url").is_err());
        assert!(policy.check_url("http://127.0.0.1:3001/webhooks/demo-receiver/12", "url").is_err());
        assert!(TargetPolicy::new(&[]).check_url("http://127.0.0.1:3000/webhooks/demo-receiver/12", "url").is_err(), "off without the demo");
    }

    #[test]
    fn attempts_are_counted_per_message_and_the_oldest_forgotten_first() {
        let r = Receiver::default();
        assert_eq!((r.count("a"), r.count("a"), r.count("b"), r.count("a")), (1, 2, 1, 3));
        for i in 0..RECEIPTS_KEPT - 1 {
            r.count(&format!("m{i}"));
        }
        assert_eq!(r.count("b"), 2, "still remembered");
        assert_eq!(r.count("a"), 1, "the oldest was forgotten to make room");
    }
}
