//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the secret is
//! `whsec_` + base64 key bytes; `webhook-signature` is `v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`, several space-separated during secret
//! rotation.

use crate::platform::secrets::{constant_time_eq, random_base64};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// A new secret: 24 random bytes (192 bits), as Svix issues them.
pub fn generate_secret() -> String {
    format!("{SECRET_PREFIX}{}", random_base64(24))
}

fn key_bytes(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret)).ok()
}

fn mac(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key_bytes(secret)?).ok()?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac.finalize().into_bytes().to_vec())
}

/// The `webhook-signature` value for one secret.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = mac(secret, msg_id, timestamp, body).expect("secrets are generated as valid base64");
    format!("v1,{}", STANDARD.encode(mac))
}

/// The header value signing with every secret given (current first, then the previous
/// one while a rotation's grace period lasts).
pub fn signature_header(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| sign(s, msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Verifies as a receiver would: any `v1` signature made with `secret` matches, and the
/// timestamp is within `tolerance_secs` of `now`.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    if (now - timestamp).abs() > tolerance_secs {
        return false;
    }
    let Some(expected) = mac(secret, msg_id, timestamp, body) else { return false };
    header.split_whitespace().filter_map(|sig| sig.strip_prefix("v1,")).any(|b64| {
        STANDARD.decode(b64).is_ok_and(|given| constant_time_eq(&given, &expected))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_reference_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verifies_any_of_several_signatures_within_tolerance() {
        let (old, new) = (generate_secret(), generate_secret());
        assert!(new.starts_with("whsec_") && new != old);
        let header = signature_header(&[&new, &old], "msg_1", 1000, b"{}");
        assert!(verify(&new, "msg_1", 1000, &header, b"{}", 1000, 300));
        assert!(verify(&old, "msg_1", 1000, &header, b"{}", 1100, 300), "old secret still verifies during rotation");
        assert!(!verify(&new, "msg_1", 1000, &header, b"{ }", 1000, 300), "body tampered");
        assert!(!verify(&new, "msg_2", 1000, &header, b"{}", 1000, 300), "id tampered");
        assert!(!verify(&new, "msg_1", 1000, &header, b"{}", 1400, 300), "too old");
        assert!(!verify(&generate_secret(), "msg_1", 1000, &header, b"{}", 1000, 300), "other secret");
    }
}
