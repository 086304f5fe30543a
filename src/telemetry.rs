//! Logging: `RUST_LOG` filters, default `info`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Fails only if a subscriber is already set (tests), which is fine.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}
