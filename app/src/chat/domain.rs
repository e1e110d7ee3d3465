//! Chat vocabulary shared with the browser.

use crate::error::AppError;
use serde::{Deserialize, Serialize};

/// Longest message accepted, in characters.
pub const TEXT_MAX_CHARS: usize = 4096;
/// Lifetime of a message when the sender gives none, in seconds.
pub const DEFAULT_TIMEOUT_SECS: i64 = 60;
/// Longest lifetime accepted: one year.
pub const MAX_TIMEOUT_SECS: i64 = 365 * 24 * 3600;

/// Message text: not blank, at most [`TEXT_MAX_CHARS`] characters, kept as written.
pub fn parse_text(raw: &str) -> Result<String, AppError> {
    if raw.trim().is_empty() {
        return Err(AppError::invalid("text", "text is required"));
    }
    if raw.chars().count() > TEXT_MAX_CHARS {
        return Err(AppError::invalid("text", format!("text is longer than {TEXT_MAX_CHARS} characters")));
    }
    Ok(raw.to_owned())
}

/// Seconds until expiry: 0 (already expired) to one year; absent means 60.
pub fn parse_timeout(raw: Option<i64>) -> Result<i64, AppError> {
    match raw {
        None => Ok(DEFAULT_TIMEOUT_SECS),
        Some(t) if t < 0 => Err(AppError::invalid("timeout", "timeout must be a whole number of seconds, 0 or more")),
        Some(t) if t > MAX_TIMEOUT_SECS => Err(AppError::invalid("timeout", "timeout must be at most one year (31536000 s)")),
        Some(t) => Ok(t),
    }
}

crate::named_enum! {
    /// Where a message was read from.
    pub enum StoredIn {
        /// The database: unexpired, or expired and not yet archived.
        Hot = "hot",
        /// The object store, after the archiver moved it.
        Archived = "archived",
    }
}

/// A message as its page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: i64,
    pub username: String,
    pub sender: Option<String>,
    pub text: String,
    pub created_at: i64,
    pub expiration_date: i64,
    pub storage: StoredIn,
    pub expired: bool,
}

/// An unexpired message waiting in an inbox, without its text (reading expires it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub id: i64,
    pub sender: Option<String>,
    pub created_at: i64,
    pub expiration_date: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_timeout_are_checked_with_the_field_named() {
        assert_eq!(parse_text(" hi ").unwrap(), " hi ");
        assert_eq!(parse_text("   ").unwrap_err().field.as_deref(), Some("text"));
        assert!(parse_text(&"é".repeat(TEXT_MAX_CHARS)).is_ok(), "the limit counts characters, not bytes");
        assert!(parse_text(&"x".repeat(TEXT_MAX_CHARS + 1)).is_err());
        assert_eq!(parse_timeout(None).unwrap(), 60);
        assert_eq!(parse_timeout(Some(0)).unwrap(), 0);
        assert_eq!(parse_timeout(Some(-1)).unwrap_err().field.as_deref(), Some("timeout"));
        assert!(parse_timeout(Some(MAX_TIMEOUT_SECS + 1)).is_err());
    }
}
