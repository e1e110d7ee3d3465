//! Logs: human-readable by default, one JSON object per line with `SB_LOG_FORMAT=json`.
//! Filter with `RUST_LOG` (default `info`).

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,aws_smithy_runtime=warn,aws_config=warn,hyper=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init`: tests start several applications in one process.
    let _ = if json {
        registry.with(fmt::layer().json().flatten_event(true).with_current_span(true)).try_init()
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        registry.with(fmt::layer().compact().with_ansi(ansi)).try_init()
    };
}
