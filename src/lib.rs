//! rs256-auth: register and sign in users; RS256 access and refresh tokens; sessions that
//! end the moment they are revoked, in Redis or in an embedded SQLite file.

// A panic on a request path is a defect: start-up failures return messages instead.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
