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

/// A secret that is not `whsec_` + non-empty base64 (or the bare base64): it cannot sign.
/// The reference libraries refuse such a secret too (`EmptySecret`, `InvalidSecret`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the signing secret is not whsec_ followed by non-empty base64")]
pub struct UnusableSecret;

fn key_bytes(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret)).ok().filter(|key| !key.is_empty())
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
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, UnusableSecret> {
    let mac = mac(secret, msg_id, timestamp, body).ok_or(UnusableSecret)?;
    Ok(format!("v1,{}", STANDARD.encode(mac)))
}

/// The header value signing with every usable secret given (current first, then the
/// previous one while a rotation's grace period lasts): a damaged previous secret does
/// not stop deliveries the current one can sign. Fails only when none can sign.
pub fn signature_header(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, UnusableSecret> {
    let signatures: Vec<String> = secrets.iter().filter_map(|s| sign(s, msg_id, timestamp, body).ok()).collect();
    if signatures.is_empty() {
        return Err(UnusableSecret);
    }
    Ok(signatures.join(" "))
}

/// Verifies as a receiver would: any `v1` signature made with `secret` matches, and the
/// timestamp is within `tolerance_secs` of `now`.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
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

    // The test vectors published with the specification's own libraries
    // (standard-webhooks/standard-webhooks, libraries/*/ tests, read at b2fa7b8).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn verifies(secret: &str, header: &str) -> bool {
        verify(secret, MSG_ID, TIMESTAMP, header, PAYLOAD, TIMESTAMP, 300)
    }

    #[test]
    fn reproduces_the_reference_vectors() {
        assert_eq!(sign(SECRET, MSG_ID, TIMESTAMP, PAYLOAD).unwrap(), EXPECTED);
        // The same key without its prefix signs the same (every reference library).
        assert_eq!(sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", MSG_ID, TIMESTAMP, PAYLOAD).unwrap(), EXPECTED);
        // The Rust library's own vector.
        let rust = sign(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(rust.unwrap(), "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
        assert!(verifies(SECRET, EXPECTED));
    }

    #[test]
    fn refuses_the_reference_negative_cases() {
        for wrong in [
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", // python
            "v1,dawfeoifkpqwoekfpqoekf",                       // javascript, php
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",  // ruby, c#
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", // go
            "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=", // rust
            "v1,invalid_signature",                            // java
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", // another version
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",    // no version
            "invalid_signature",
            &EXPECTED[..8], // a partial signature
            "v1,",
            "",
        ] {
            assert!(!verifies(SECRET, wrong), "{wrong:?} must not verify");
        }
        // Non-canonical base64 (non-zero padding bits) is refused: decoding is strict.
        assert!(!verifies(SECRET, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF="));
    }

    #[test]
    fn accepts_one_valid_signature_among_several() {
        let go = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {EXPECTED} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        assert!(verifies(SECRET, &go));
        let others = "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=";
        assert!(!verifies(SECRET, others), "none of them is valid");
        assert!(verifies(SECRET, &format!("{others} {EXPECTED}")));
    }

    #[test]
    fn timestamps_outside_five_minutes_are_refused() {
        let at = |now: i64| verify(SECRET, MSG_ID, TIMESTAMP, EXPECTED, PAYLOAD, now, 300);
        assert!(at(TIMESTAMP + 300) && at(TIMESTAMP - 300), "the boundary is inclusive");
        assert!(!at(TIMESTAMP + 301), "too old");
        assert!(!at(TIMESTAMP - 301), "too new");
        assert!(!verify(SECRET, MSG_ID, i64::MIN, EXPECTED, PAYLOAD, i64::MAX, 300), "no overflow at the extremes");
    }

    #[test]
    fn empty_or_undecodable_secrets_cannot_sign() {
        for secret in ["", "whsec_", "whsec_not base64!"] {
            assert_eq!(sign(secret, MSG_ID, TIMESTAMP, PAYLOAD), Err(UnusableSecret), "{secret:?}");
            assert!(!verifies(secret, EXPECTED));
        }
        assert_eq!(signature_header(&["", "whsec_"], MSG_ID, TIMESTAMP, PAYLOAD), Err(UnusableSecret), "none can sign");
        assert_eq!(signature_header(&[SECRET, ""], MSG_ID, TIMESTAMP, PAYLOAD).as_deref(), Ok(EXPECTED), "the usable one signs");
    }

    #[test]
    fn verifies_any_of_several_signatures_within_tolerance() {
        let (old, new) = (generate_secret(), generate_secret());
        assert!(new.starts_with("whsec_") && new != old);
        let header = signature_header(&[&new, &old], "msg_1", 1000, b"{}").unwrap();
        assert!(verify(&new, "msg_1", 1000, &header, b"{}", 1000, 300));
        assert!(verify(&old, "msg_1", 1000, &header, b"{}", 1100, 300), "old secret still verifies during rotation");
        assert!(!verify(&new, "msg_1", 1000, &header, b"{ }", 1000, 300), "body tampered");
        assert!(!verify(&new, "msg_2", 1000, &header, b"{}", 1000, 300), "id tampered");
        assert!(!verify(&new, "msg_1", 1000, &header, b"{}", 1400, 300), "too old");
        assert!(!verify(&generate_secret(), "msg_1", 1000, &header, b"{}", 1000, 300), "other secret");
    }
}
