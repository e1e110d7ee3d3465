//! Booking webhook intake, from the environment.

use crate::platform::settings::{Settings, Vars};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct MeetingsSettings {
    /// `CALENDLY_WEBHOOK_SIGNING_KEY`. Unset on the embedded run: generated once into
    /// `<data>/secrets/` (and logged) so a developer can sign test deliveries; unset
    /// elsewhere: intake answers 503 until it is configured.
    pub signing_key: Option<String>,
    /// How old a signature timestamp may be (`CALENDLY_TOLERANCE_SECS`, default 180).
    pub tolerance: Duration,
    /// Sample bookings (the demo's, and "Send a test booking" on the meetings page): only
    /// on a demo installation (`SB_DEMO_DATA`) whose key is the development key generated
    /// into `<data>/secrets/`. With a configured key the feed is a real one, and nothing
    /// the app signs itself belongs in it.
    pub test_bookings: bool,
}

impl MeetingsSettings {
    pub fn from_vars(env: &Vars) -> Self {
        Self {
            signing_key: env.var("CALENDLY_WEBHOOK_SIGNING_KEY"),
            tolerance: Duration::from_secs(env.number("CALENDLY_TOLERANCE_SECS", 180)),
            test_bookings: false,
        }
    }

    /// On the embedded run, a signing key kept in `<data>/secrets/` when none is set.
    pub fn with_dev_key(mut self, settings: &Settings) -> Self {
        let generated = settings.is_sqlite() && self.signing_key.is_none();
        if generated {
            let key = settings.dev_secret("calendly-signing-key", "CALENDLY_WEBHOOK_SIGNING_KEY", || {
                crate::platform::secrets::random_token(32)
            });
            self.signing_key = Some(key);
        }
        self.test_bookings = generated && settings.demo_data;
        self
    }
}
