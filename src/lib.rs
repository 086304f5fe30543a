//! rs256-auth: register and sign in users; RS256 access and refresh tokens; sessions in Redis.

pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
