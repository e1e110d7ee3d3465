//! Secrets at rest: values the app must read back in clear (webhook signing secrets, the
//! owner's own iCal feed address) are stored sealed with ChaCha20-Poly1305 under a key
//! that lives outside the database (`SB_SECRET_KEY`). A copy of the database alone — a
//! backup, a replica, a leaked dump — then reveals none of them.
//!
//! A sealed value is `v1:` + URL-safe base64 of `nonce (12 bytes) ‖ ciphertext ‖ tag`.
//! Each value is bound to its *context* (what column it belongs to) as associated data,
//! so a sealed secret copied into another column does not open there.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use std::sync::Arc;

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// A fresh random key, as `SB_SECRET_KEY` expects it (base64 of 32 bytes).
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    STANDARD.encode(key)
}

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the value is not sealed")]
    NotSealed,
    #[error("the sealed value is damaged or was sealed with another key")]
    Damaged,
}

#[derive(Clone)]
pub struct SecretBox {
    cipher: Arc<ChaCha20Poly1305>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(…)")
    }
}

impl SecretBox {
    /// From the configured key: 32 bytes as base64 (standard or URL-safe) or hex.
    pub fn from_config(key: &str) -> Result<Self, String> {
        let key = key.trim();
        let bytes = STANDARD
            .decode(key)
            .or_else(|_| URL_SAFE_NO_PAD.decode(key.trim_end_matches('=')))
            .ok()
            .filter(|b| b.len() == 32)
            .or_else(|| hex::decode(key).ok().filter(|b| b.len() == 32))
            .ok_or("SB_SECRET_KEY must be 32 random bytes, base64 or hex (e.g. `openssl rand -base64 32`)")?;
        Ok(Self { cipher: Arc::new(ChaCha20Poly1305::new(Key::from_slice(&bytes))) })
    }

    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    /// Seals `plaintext` for `context` with a fresh random nonce.
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .expect("ChaCha20-Poly1305 encryption of an in-memory value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, SealError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| SealError::Damaged)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Damaged);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let clear = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(clear).map_err(|_| SealError::Damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let sb = SecretBox::from_config(&generate_key()).unwrap();
        let sealed = sb.seal("broker.secret", "whsec_abc");
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("whsec_abc"), "the clear text is not in the sealed value");
        assert_ne!(sealed, sb.seal("broker.secret", "whsec_abc"), "a fresh nonce each time");
        assert_eq!(sb.open("broker.secret", &sealed).unwrap(), "whsec_abc");
        assert!(matches!(sb.open("feed.token", &sealed), Err(SealError::Damaged)), "bound to its context");
        let other = SecretBox::from_config(&generate_key()).unwrap();
        assert!(matches!(other.open("broker.secret", &sealed), Err(SealError::Damaged)), "bound to its key");
        assert!(matches!(sb.open("broker.secret", "whsec_abc"), Err(SealError::NotSealed)));
        let mut tampered = sealed.clone();
        tampered.pop();
        assert!(sb.open("broker.secret", &tampered).is_err());
    }

    #[test]
    fn keys_are_read_as_base64_or_hex_of_32_bytes() {
        assert!(SecretBox::from_config(&"ab".repeat(32)).is_ok(), "hex");
        assert!(SecretBox::from_config(&generate_key()).is_ok(), "base64");
        for bad in ["", "short", &"ab".repeat(31), "not base64 at all!!"] {
            assert!(SecretBox::from_config(bad).is_err(), "{bad:?}");
        }
    }
}
