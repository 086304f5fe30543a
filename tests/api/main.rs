//! Integration tests: the real app on a random port, on the embedded store by default or on
//! real Postgres and Redis (see helpers/mod.rs). One binary, so the app's dependencies link
//! once.

mod binary;
mod helpers;

mod accounts_sessions;
mod accounts_users;
mod ambiguous;
mod availability;
mod bodies;
mod cluster;
mod crashes;
mod cross_site;
mod cut_off;
mod embedded;
mod expiry;
mod failover;
mod faults;
mod forged_tokens;
mod history;
mod issued_tokens;
mod key_settings;
mod login;
mod logout;
mod logs;
mod mail_address;
mod mail_delivery;
mod mail_limits;
mod mail_links;
mod mail_reset;
mod mail_store;
mod mail_tls;
mod me;
mod openapi;
mod operations;
mod rate_limit;
mod refresh;
mod refused_input;
mod register;
mod request_ids;
mod routing;
mod session_store;
mod settings;
mod signing_keys;
mod startup;
mod validation;
