//! Integration tests: the real app on a random port, against real Postgres and Redis.
//! One binary, so the app's dependencies link once.

mod helpers;

mod auth_flow;
mod config;
mod edges;
mod faults;
mod rate_limit;
mod tokens;
