//! The one shared state of the HTTP layer, built once at start: the flows, and the HTTP
//! policy around them.

use crate::config::Cidr;
use crate::http::cookies::CookiePolicy;
use crate::service::auth::AuthService;
use crate::service::cursor::CursorSeal;

pub struct AppState {
    pub auth: AuthService,
    pub cookies: CookiePolicy,
    /// Seals and opens the admin list's cursors.
    pub cursors: CursorSeal,
    /// `CLIENT_ORIGIN`: the sites allowed to call the state-changing routes besides our own.
    pub client_origins: Vec<String>,
    pub trusted_proxies: Vec<Cidr>,
}
