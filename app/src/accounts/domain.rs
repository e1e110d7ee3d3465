//! Account vocabulary, parsed once at the edge. Shared with the browser so forms can
//! check input before sending it; the server parses again and is the authority.

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A username: 3–32 characters of `a-z 0-9 _ . -`, starting with a letter or digit.
/// Stored and compared lower-case; it is the key in URLs (`/users/{username}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let name = raw.trim().to_ascii_lowercase();
        let field = "username";
        if name.is_empty() {
            return Err(AppError::invalid(field, "username is required"));
        }
        if name.len() < 3 || name.len() > Self::MAX_LEN {
            return Err(AppError::invalid(field, "username must be 3 to 32 characters long"));
        }
        if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)) {
            return Err(AppError::invalid(
                field,
                "username may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(AppError::invalid(field, "username must start with a letter or digit"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = AppError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password accepted for a new account. Following NIST SP 800-63B: a length floor
/// rather than composition rules, a ceiling that bounds hashing cost, and a refusal of
/// passwords that are trivially guessable.
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_LEN: usize = 10;
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str, username: &Username) -> Result<Self, AppError> {
        let field = "password";
        let chars = raw.chars().count();
        if chars < Self::MIN_LEN {
            return Err(AppError::invalid(field, "password must be at least 10 characters long"));
        }
        if chars > Self::MAX_LEN {
            return Err(AppError::invalid(field, "password must be at most 128 characters long"));
        }
        let lower = raw.to_lowercase();
        let distinct = {
            let mut cs: Vec<char> = lower.chars().collect();
            cs.sort_unstable();
            cs.dedup();
            cs.len()
        };
        if distinct < 4 || lower.contains(username.as_str()) || COMMON.iter().any(|c| lower.starts_with(c)) {
            return Err(AppError::invalid(
                field,
                "password is too easy to guess: avoid your username, common words and repeated characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Prefixes of the most common leaked passwords.
const COMMON: &[&str] = &["password", "123456", "qwerty", "letmein", "iloveyou", "admin", "welcome", "abc123"];

/// What a signed-in person may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// The signed-in person as pages and handlers see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub time_zone: String,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(Username::parse("  Ada.Lovelace ").unwrap().as_str(), "ada.lovelace");
        for bad in ["", "ab", "-ada", "ada lovelace", "ädä", &"x".repeat(33)] {
            let err = Username::parse(bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("username"), "{bad:?}");
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn weak_passwords_are_refused_with_the_field_named() {
        let user = Username::parse("grace").unwrap();
        assert!(NewPassword::parse("correct horse battery", &user).is_ok());
        for bad in ["short", "aaaaaaaaaaaa", "password123!", "grace-is-great", &"long-enough".repeat(20)] {
            let err = NewPassword::parse(bad, &user).err().expect(bad);
            assert_eq!(err.field.as_deref(), Some("password"), "{bad:?}");
        }
    }
}
