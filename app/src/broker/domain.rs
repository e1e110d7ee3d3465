//! Broker vocabulary shared with the browser: topic names, subscription patterns, and
//! the JSON shapes of the admin pages.

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use std::fmt;

fn is_segment(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c))
}

/// A topic name, `domain:event` (e.g. `fin:purchase`, `user:new`): two segments of
/// lower-case letters, digits, `_`, `-`, `.`, each starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TopicName(String);

impl TopicName {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        match raw.split_once(':') {
            Some((domain, event)) if is_segment(domain) && is_segment(event) => Ok(Self(raw.to_owned())),
            _ => Err(AppError::invalid(
                "name",
                "a topic is named domain:event, lower-case letters, digits, _ - . (e.g. fin:purchase)",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The patterns a subscription may use to match this topic: itself, its domain
    /// wildcard and the catch-all.
    pub fn matching_patterns(&self) -> [String; 3] {
        let domain = self.0.split_once(':').map(|(d, _)| d).unwrap_or_default();
        [self.0.clone(), format!("{domain}:*"), "*".to_owned()]
    }
}

impl TryFrom<String> for TopicName {
    type Error = AppError;
    fn try_from(v: String) -> Result<Self, AppError> {
        Self::parse(&v)
    }
}

impl From<TopicName> for String {
    fn from(v: TopicName) -> Self {
        v.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a subscription listens to: a topic name, a domain wildcard `user:*`, or `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TopicPattern(String);

impl TopicPattern {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let ok = raw == "*"
            || match raw.split_once(':') {
                Some((domain, "*")) => is_segment(domain),
                _ => TopicName::parse(raw).is_ok(),
            };
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(AppError::invalid("topic", "expected a topic name (user:new), a domain wildcard (user:*) or *"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, topic: &TopicName) -> bool {
        topic.matching_patterns().iter().any(|p| p == &self.0)
    }

    /// Whether some topic could match both patterns (a subscriber may not hold two
    /// overlapping subscriptions: it would receive the same message twice).
    pub fn overlaps(&self, other: &TopicPattern) -> bool {
        let domain = |p: &str| p.split_once(':').map(|(d, _)| d.to_owned());
        match (self.0.as_str(), other.0.as_str()) {
            ("*", _) | (_, "*") => true,
            (a, b) if a == b => true,
            (a, b) if a.ends_with(":*") || b.ends_with(":*") => domain(a) == domain(b),
            _ => false,
        }
    }
}

crate::named_enum! {
    /// What happens to a message that used up its attempts.
    pub enum FailurePolicy {
        /// Stay at the head, holding back the messages behind it, until an operator acts.
        Block = "block",
        /// Park it as dead and go on with the next message.
        DeadLetter = "dead_letter",
    }
}

impl FailurePolicy {
    /// A policy as a request or form names it (`dead-letter` is accepted too).
    pub fn from_input(text: &str) -> Option<Self> {
        Self::parse(&text.trim().replace('-', "_"))
    }

    /// The `policy` field of a request or form: refused, naming it, unless a policy.
    pub fn from_field(text: &str) -> Result<Self, crate::error::AppError> {
        Self::from_input(text).ok_or_else(|| crate::error::AppError::invalid("policy", "policy is block or dead_letter"))
    }
}

crate::named_enum! {
    /// Whether a subscription is delivered to.
    pub enum SubscriptionState {
        Active = "active",
        /// Held by an operator: messages queue up and are delivered on resume.
        Paused = "paused",
        /// Switched off because the endpoint answered 410 Gone; gets no new messages.
        Disabled = "disabled",
    }
}

crate::named_enum! {
    /// Where one delivery of a message to a subscriber stands.
    pub enum DeliveryState {
        /// Waiting in its lane, or being retried.
        Pending = "pending",
        Delivered = "delivered",
        /// Used up its attempts under the `dead_letter` policy.
        Dead = "dead",
        /// Skipped by an operator.
        Skipped = "skipped",
    }
}

/// A topic as the admin pages show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TopicSummary {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub members_may_publish: bool,
    pub messages: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SubscriberSummary {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SubscriptionSummary {
    pub id: i64,
    pub subscriber_id: i64,
    pub topic: String,
    pub state: SubscriptionState,
    pub policy: FailurePolicy,
    pub max_attempts: i32,
    pub disabled_reason: Option<String>,
    /// Messages waiting to be delivered, over all the lanes of the subscription.
    pub lag: i64,
    /// Lanes whose head used up its attempts under the `block` policy.
    pub blocked: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeliverySummary {
    pub id: i64,
    pub message_id: i64,
    pub topic: String,
    pub seq: i64,
    pub state: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AttemptSummary {
    pub attempt: i32,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub response_body: Option<String>,
    /// The dispatcher (`host-pid`) that made the attempt.
    pub worker: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_domain_colon_event() {
        for ok in ["fin:purchase", "user:new", "user:online", "meeting:re-scheduled", "a1:b.c_d"] {
            assert!(TopicName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "user", "user:", ":new", "User:new", "user:new:x", "user:*", "1user:new", "us er:new"] {
            assert_eq!(TopicName::parse(bad).unwrap_err().field.as_deref(), Some("name"), "{bad}");
        }
    }

    #[test]
    fn patterns_match_and_overlap() {
        let topic = TopicName::parse("user:new").unwrap();
        let p = |s| TopicPattern::parse(s).unwrap();
        assert!(p("user:new").matches(&topic));
        assert!(p("user:*").matches(&topic));
        assert!(p("*").matches(&topic));
        assert!(!p("user:online").matches(&topic));
        assert!(!p("fin:*").matches(&topic));
        assert!(TopicPattern::parse("user:**").is_err());
        assert!(TopicPattern::parse("*:new").is_err());

        assert!(p("user:*").overlaps(&p("user:new")));
        assert!(p("*").overlaps(&p("fin:purchase")));
        assert!(!p("user:*").overlaps(&p("fin:*")));
        assert!(!p("user:new").overlaps(&p("user:online")));
    }
}
