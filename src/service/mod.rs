//! The service's flows and crypto, between HTTP and the stores.

pub mod auth;
pub mod cache;
pub mod cursor;
pub mod keygen;
pub mod password;
pub mod tokens;
