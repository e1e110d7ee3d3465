//! Calendly webhook v2 deliveries: the signature scheme, and the envelope and invitee
//! payload parsed into the facts the meetings model folds.
//!
//! Signature header: `Calendly-Webhook-Signature: t=<unix seconds>,v1=<hex>`, where v1 is
//! HMAC-SHA256 keyed with the signing key (its bytes as given) over `"{t}.{raw body}"`.

use crate::error::AppError;
use crate::platform::secrets::constant_time_eq;
use crate::platform::time::parse_rfc3339;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "calendly-webhook-signature";

pub fn sign(key: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks the header against the body: present, well-formed, made with `key`, and no
/// older (or newer) than `tolerance_secs` at `now_secs`. Errors are 401s that say why.
pub fn verify(header: Option<&str>, body: &[u8], key: &str, now_secs: i64, tolerance_secs: i64) -> Result<(), AppError> {
    let header = header.ok_or_else(|| AppError::unauthorized("missing Calendly-Webhook-Signature header"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let (Some(t), false) = (timestamp, signatures.is_empty()) else {
        return Err(AppError::unauthorized("malformed Calendly-Webhook-Signature header; expected t=<unix>,v1=<hex>"));
    };
    let expected = sign(key, t, body);
    if !signatures.iter().any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes())) {
        return Err(AppError::unauthorized("invalid webhook signature"));
    }
    if (now_secs - t).abs() > tolerance_secs {
        return Err(AppError::new(401, "stale_signature", format!(
            "signature timestamp is {} s away from now; deliveries older than {tolerance_secs} s are refused (replay protection)",
            now_secs - t
        )));
    }
    Ok(())
}

pub const INVITEE_CREATED: &str = "invitee.created";
pub const INVITEE_CANCELED: &str = "invitee.canceled";
pub const NO_SHOW_CREATED: &str = "invitee_no_show.created";
pub const NO_SHOW_DELETED: &str = "invitee_no_show.deleted";

/// A delivery's envelope: `{created_at, created_by, event, payload}`.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub event: String,
    pub created_at: i64,
    pub payload: Value,
}

/// What one delivery says about a meeting.
#[derive(Clone, Debug, PartialEq)]
pub enum Fact {
    Invitee(InviteeFacts),
    NoShow { invitee_uri: String, no_show: bool },
    /// Stored raw, not folded (an event this version does not know).
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InviteeFacts {
    pub canceled: bool,
    pub invitee_uri: String,
    pub event_uri: String,
    pub event_name: String,
    pub name: String,
    pub email: String,
    pub timezone: String,
    pub start_time: i64,
    pub end_time: i64,
    pub location: String,
    pub host_email: String,
    pub rescheduled: bool,
    /// Set on the invitee of a rescheduled (new) meeting: the invitee it replaces.
    pub old_invitee: Option<String>,
    /// Set on the canceled invitee of a reschedule: the invitee that replaces it.
    pub new_invitee: Option<String>,
    pub canceled_by: Option<String>,
    pub cancel_reason: Option<String>,
    pub canceler_type: Option<String>,
}

fn text<'a>(v: &'a Value, path: &str) -> Result<&'a str, AppError> {
    let mut cur = v;
    for key in path.split('.') {
        cur = &cur[key];
    }
    cur.as_str().filter(|s| !s.is_empty()).ok_or_else(|| AppError::invalid(path, format!("{path} is required (a string)")))
}

fn opt_text(v: &Value, path: &str) -> Option<String> {
    text(v, path).ok().map(str::to_owned)
}

/// Longest identifier (URI) a meeting keeps: its indexed columns hold 191 characters.
const MAX_URI: usize = 191;

/// An identifier must fit its column whole (clipped, it would name something else), so
/// a longer one is refused at intake rather than failing to fold later.
fn uri<'a>(v: &'a Value, path: &str) -> Result<&'a str, AppError> {
    let found = text(v, path)?;
    if found.chars().count() > MAX_URI {
        return Err(AppError::invalid(path, format!("{path} is longer than {MAX_URI} characters")));
    }
    Ok(found)
}

fn opt_uri(v: &Value, path: &str) -> Result<Option<String>, AppError> {
    match text(v, path) {
        Ok(_) => uri(v, path).map(|u| Some(u.to_owned())),
        Err(_) => Ok(None),
    }
}

/// Free text, clipped to the characters its column holds.
fn clipped(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        text
    } else {
        text.chars().take(max).collect()
    }
}

fn time(v: &Value, path: &str) -> Result<i64, AppError> {
    parse_rfc3339(text(v, path)?).ok_or_else(|| AppError::invalid(path, format!("{path} must be an ISO-8601 time")))
}

/// The scheduled event URI an invitee URI belongs to
/// (`…/scheduled_events/<id>/invitees/<id>` → `…/scheduled_events/<id>`).
pub fn event_of_invitee(invitee_uri: &str) -> Option<String> {
    invitee_uri.split_once("/invitees/").map(|(event, _)| event.to_owned())
}

/// Parses the envelope; field paths in errors are as in the body (`payload.uri`).
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, AppError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| AppError::invalid("body", format!("the body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(AppError::invalid("body", "expected a JSON object"));
    }
    let event = text(&v, "event")?.to_owned();
    let created_at = time(&v, "created_at")?;
    if !v["payload"].is_object() {
        return Err(AppError::invalid("payload", "payload is required (an object)"));
    }
    Ok(Envelope { event, created_at, payload: v["payload"].clone() })
}

/// The facts of a known event, checking the fields that matter.
pub fn facts(env: &Envelope) -> Result<Fact, AppError> {
    let p = &env.payload;
    let prefixed = |e: AppError| {
        let field = e.field.clone().unwrap_or_default();
        AppError::invalid(&format!("payload.{field}"), format!("payload.{}", e.message))
    };
    match env.event.as_str() {
        INVITEE_CREATED | INVITEE_CANCELED => invitee_facts(p, env.event == INVITEE_CANCELED).map(Fact::Invitee).map_err(prefixed),
        NO_SHOW_CREATED | NO_SHOW_DELETED => Ok(Fact::NoShow {
            invitee_uri: uri(p, "invitee").map_err(prefixed)?.to_owned(),
            no_show: env.event == NO_SHOW_CREATED,
        }),
        _ => Ok(Fact::Unknown),
    }
}

fn invitee_facts(p: &Value, canceled: bool) -> Result<InviteeFacts, AppError> {
    let se = &p["scheduled_event"];
    let location = &se["location"];
    let location = location["location"]
        .as_str()
        .or_else(|| location["join_url"].as_str())
        .or_else(|| location["type"].as_str())
        .or_else(|| location.as_str())
        .unwrap_or_default()
        .to_owned();
    let host_email = se["event_memberships"][0]["user_email"].as_str().unwrap_or_default().to_owned();
    // Lengths are those of the `meetings` columns: a longer value must not make a stored
    // delivery fail to fold.
    Ok(InviteeFacts {
        canceled,
        invitee_uri: uri(p, "uri")?.to_owned(),
        event_uri: uri(p, "scheduled_event.uri")?.to_owned(),
        event_name: clipped(opt_text(p, "scheduled_event.name").unwrap_or_else(|| "Meeting".into()), 255),
        name: clipped(opt_text(p, "name").unwrap_or_default(), 255),
        email: clipped(text(p, "email")?.to_owned(), 255),
        timezone: clipped(opt_text(p, "timezone").unwrap_or_default(), 64),
        start_time: time(p, "scheduled_event.start_time")?,
        end_time: time(p, "scheduled_event.end_time")?,
        location: clipped(location, 500),
        host_email: clipped(host_email, 191),
        rescheduled: p["rescheduled"].as_bool().unwrap_or(false),
        old_invitee: opt_uri(p, "old_invitee")?,
        new_invitee: opt_uri(p, "new_invitee")?,
        canceled_by: opt_text(p, "cancellation.canceled_by").map(|t| clipped(t, 255)),
        cancel_reason: opt_text(p, "cancellation.reason").map(|t| clipped(t, 1000)),
        canceler_type: opt_text(p, "cancellation.canceler_type").map(|t| clipped(t, 32)),
    })
}

/// The key under which a retried delivery is recognised as the same one.
pub fn dedupe_key(env: &Envelope, body: &[u8]) -> String {
    let subject = env.payload["uri"].as_str().map(str::to_owned).unwrap_or_else(|| {
        use sha2::Digest;
        format!("sha256:{}", hex::encode(Sha256::digest(body)))
    });
    let key = format!("{}|{}", env.event, subject);
    if key.len() <= 191 {
        key
    } else {
        use sha2::Digest;
        format!("{}|sha256:{}", env.event, hex::encode(Sha256::digest(subject.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_say_why_they_fail() {
        let body = br#"{"event":"invitee.created"}"#;
        let header = format!("t=1700000000,v1={}", sign("key", 1_700_000_000, body));
        assert!(verify(Some(&header), body, "key", 1_700_000_010, 180).is_ok());
        assert_eq!(verify(None, body, "key", 1_700_000_000, 180).unwrap_err().status, 401);
        assert!(verify(Some("garbage"), body, "key", 1_700_000_000, 180).unwrap_err().message.contains("malformed"));
        assert!(verify(Some(&header), b"{}", "key", 1_700_000_000, 180).unwrap_err().message.contains("invalid"));
        assert!(verify(Some(&header), body, "other", 1_700_000_000, 180).is_err());
        let stale = verify(Some(&header), body, "key", 1_700_000_000 + 181, 180).unwrap_err();
        assert_eq!((stale.status, stale.code.as_str()), (401, "stale_signature"));
    }

    #[test]
    fn missing_fields_are_named_with_their_path() {
        let env = parse_envelope(br#"{"event":"invitee.created","created_at":"2026-11-20T10:00:00Z","payload":{"uri":"u","email":"e"}}"#).unwrap();
        let err = facts(&env).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("payload.scheduled_event.uri"));
        assert_eq!(parse_envelope(br#"{"created_at":"x"}"#).unwrap_err().field.as_deref(), Some("event"));
        assert_eq!(parse_envelope(b"nope").unwrap_err().field.as_deref(), Some("body"));
        let unknown = parse_envelope(br#"{"event":"routing_form_submission.created","created_at":"2026-11-20T10:00:00Z","payload":{}}"#).unwrap();
        assert_eq!(facts(&unknown).unwrap(), Fact::Unknown);
    }

    #[test]
    fn invitee_uris_name_their_event() {
        assert_eq!(
            event_of_invitee("https://api.calendly.com/scheduled_events/EV1/invitees/IN1").as_deref(),
            Some("https://api.calendly.com/scheduled_events/EV1")
        );
        assert_eq!(event_of_invitee("https://example.com/x"), None);
    }
}
