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

crate::named_enum! {
    /// What a signed-in person may do.
    pub enum Role {
        Admin = "admin",
        Member = "member",
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

/// A user as other capabilities see them: who they are and their public preferences,
/// never their credentials or role. Other capabilities ask for it through
/// `accounts::service::profile_*`, not by reading the accounts' tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub time_zone: String,
    /// Others see this user's events in full (else only as free/busy).
    pub calendar_shared: bool,
}

/// Rights a personal API token may ask for beyond acting as its owner. A token never
/// carries more than its owner's role allows: a scope the role lacks is refused when the
/// token is issued and ignored if the role changes later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Read any inbox. Admins already may; kept so existing admin scripts keep working.
    #[serde(rename = "chat:read")]
    ChatRead,
}

impl Scope {
    pub const ALL: &'static [Scope] = &[Scope::ChatRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ChatRead => "chat:read",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|scope| scope.as_str() == s)
    }

    /// Whether an account with `role` may hold this scope.
    pub fn allowed_for(self, role: Role) -> bool {
        match self {
            Scope::ChatRead => role == Role::Admin,
        }
    }
}

/// How a caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A browser session: the account's own rights.
    Session,
    /// A personal API token: the account's rights, and those of its scopes that the
    /// account's role allows.
    Token { scopes: Vec<Scope> },
    /// The operator at the server's command line (`server …`), who has the database
    /// anyway: acts as an administrator.
    Operator,
}

/// Who is calling, as every service sees it: REST handlers, server functions, streams
/// and CLI commands all build one and hand it to the service, which decides from it and
/// the stored rows what the call may do. (The HTTP extractor only builds it.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub viewer: Viewer,
    pub credential: Credential,
}

impl Caller {
    pub fn session(viewer: Viewer) -> Self {
        Self { viewer, credential: Credential::Session }
    }

    /// A token's caller; scopes the owner's role does not allow are dropped here, so a
    /// demoted admin's old tokens lose them too.
    pub fn token(viewer: Viewer, scopes: Vec<Scope>) -> Self {
        let scopes = scopes.into_iter().filter(|s| s.allowed_for(viewer.role)).collect();
        Self { viewer, credential: Credential::Token { scopes } }
    }

    /// The account itself, acting for the app (the demo account's content, which no one
    /// signs in to write).
    #[cfg(feature = "ssr")]
    pub(crate) fn account(p: &Profile) -> Self {
        let viewer = Viewer {
            id: p.id,
            username: p.username.clone(),
            display_name: p.display_name.clone(),
            role: Role::Member,
            time_zone: p.time_zone.clone(),
        };
        Self { viewer, credential: Credential::Session }
    }

    /// The command-line operator.
    pub fn operator() -> Self {
        let viewer = Viewer {
            id: 0,
            username: "operator".into(),
            display_name: "operator (command line)".into(),
            role: Role::Admin,
            time_zone: "UTC".into(),
        };
        Self { viewer, credential: Credential::Operator }
    }

    pub fn id(&self) -> i64 {
        self.viewer.id
    }

    pub fn username(&self) -> &str {
        &self.viewer.username
    }

    pub fn is_admin(&self) -> bool {
        self.viewer.is_admin()
    }

    /// The zone the caller sees times in. Profiles are written with a checked zone; one
    /// that no longer reads (a hand-edited row, a zone dropped from the tz database)
    /// shows UTC rather than failing every page.
    #[cfg(feature = "ssr")]
    pub fn zone(&self) -> chrono_tz::Tz {
        self.viewer.time_zone.parse().unwrap_or_else(|_| {
            tracing::warn!(user = %self.viewer.username, zone = %self.viewer.time_zone, "a profile's time zone does not read; showing UTC");
            chrono_tz::Tz::UTC
        })
    }

    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden("this needs an admin account"))
        }
    }

    /// Whether this caller has `scope`: a session or the operator when the role allows
    /// it, a token when it was issued with it and the role (still) allows it.
    pub fn has_scope(&self, scope: Scope) -> bool {
        match &self.credential {
            Credential::Token { scopes } => scopes.contains(&scope),
            Credential::Session | Credential::Operator => scope.allowed_for(self.viewer.role),
        }
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

    fn viewer(role: Role) -> Viewer {
        Viewer { id: 7, username: "ada".into(), display_name: "Ada".into(), role, time_zone: "UTC".into() }
    }

    #[test]
    fn a_token_never_carries_more_than_its_owners_role() {
        let member = Caller::token(viewer(Role::Member), vec![Scope::ChatRead]);
        assert!(!member.has_scope(Scope::ChatRead), "a member's chat:read token reads nothing extra");
        assert!(Caller::token(viewer(Role::Admin), vec![Scope::ChatRead]).has_scope(Scope::ChatRead));
        assert!(!Caller::token(viewer(Role::Admin), vec![]).has_scope(Scope::ChatRead), "a token has only its scopes");
        assert!(Caller::session(viewer(Role::Admin)).has_scope(Scope::ChatRead));
        assert!(!Caller::session(viewer(Role::Member)).has_scope(Scope::ChatRead));
        assert!(Caller::operator().is_admin());
        assert_eq!(Scope::parse("chat:read"), Some(Scope::ChatRead));
        assert_eq!(Scope::parse("chat:write"), None);
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
