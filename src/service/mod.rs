//! The service's flows and crypto, between HTTP and the stores.

pub mod accounts;
pub mod admin;
pub mod attempts;
pub mod auth;
pub mod cache;
mod core;
pub mod cursor;
pub mod email;
pub mod keygen;
pub mod mail;
pub mod mfa;
pub mod opaque;
pub mod password;
pub mod sessions;
pub mod tokens;
