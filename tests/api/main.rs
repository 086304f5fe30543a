//! Integration tests: the real app on a random port, on the embedded store by default or on
//! real Postgres and Redis (see helpers.rs). One binary, so the app's dependencies link once.

mod binary;
mod helpers;

mod accounts_sessions;
mod accounts_users;
mod ambiguous;
mod auth_flow;
mod cluster;
mod config;
mod cut_off;
mod edges;
mod embedded;
mod expiry;
mod faults;
mod logs;
mod openapi;
mod operations;
mod rate_limit;
mod refused_input;
mod tokens;
