//! How a store fails: an outage (retry later) or a defect. The HTTP status is the service
//! boundary's business (`From<StoreError> for AppError` in error.rs), not the store's.

use std::time::Duration;

/// How long a request waits for a store before its call is an outage.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached, or cannot answer or write in time.
    #[error("{store} is unavailable: {cause}")]
    Unavailable { store: &'static str, cause: String },
    /// Anything else: a refused command, a row that cannot be read. A defect.
    #[error("{store} failed: {cause}")]
    Failed { store: &'static str, cause: String },
}

impl StoreError {
    pub fn unavailable(store: &'static str, cause: impl std::fmt::Display) -> Self {
        StoreError::Unavailable {
            store,
            cause: cause.to_string(),
        }
    }

    pub fn failed(store: &'static str, cause: impl std::fmt::Display) -> Self {
        StoreError::Failed {
            store,
            cause: cause.to_string(),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
