//! The one shared state of the app, built once at start.

use std::time::Duration;

use crate::config::Cidr;
use crate::http::cookies::CookiePolicy;
use crate::service::password::Passwords;
use crate::service::tokens::Tokens;
use crate::store::attempts::LoginAttempts;
use crate::store::{SessionStore, UserStore};

pub struct AppState {
    pub users: UserStore,
    pub sessions: SessionStore,
    pub tokens: Tokens,
    pub passwords: Passwords,
    pub cookies: CookiePolicy,
    pub refresh_grace: Duration,
    pub attempts: LoginAttempts,
    /// `CLIENT_ORIGIN`: the sites allowed to call the state-changing routes besides our own.
    pub client_origins: Vec<String>,
    pub trusted_proxies: Vec<Cidr>,
}
