//! Logging: `RUST_LOG` filters (default `info`); `LOG_FORMAT` picks lines for people or JSON
//! lines. A request's lines carry its request id through the span that middleware.rs opens.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Crates that could print a header or a body at their most verbose levels are held at
/// `info` whatever `RUST_LOG` asks: a cookie or a token must not reach the log.
const QUIET: [&str; 4] = ["actix_http=info", "h2=info", "hyper=info", "reqwest=info"];

pub fn init(format: LogFormat) {
    let filter = QUIET.iter().filter_map(|d| d.parse().ok()).fold(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        EnvFilter::add_directive,
    );
    // Colours only for a person at a terminal, not for a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    // Fails only if a subscriber is already set (tests), which is fine.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // Every span of the line is listed, so the request's id is there even in a line
        // from a nested span (argon2's, say).
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}
