//! The only place that builds cookies: setting and clearing use the same attributes,
//! or browsers keep the "cleared" cookie.

use actix_web::HttpResponse;
use actix_web::cookie::{Cookie, time};

use crate::config::CookieSettings;
use crate::service::sessions::SessionTokens;

pub const ACCESS_COOKIE: &str = "access_token";
pub const REFRESH_COOKIE: &str = "refresh_token";
pub const LOGGED_IN_COOKIE: &str = "logged_in";
/// The refresh cookie goes only to the auth endpoints.
const REFRESH_PATH: &str = "/api/auth";

pub struct CookiePolicy {
    settings: CookieSettings,
}

impl CookiePolicy {
    pub fn new(settings: CookieSettings) -> Self {
        CookiePolicy { settings }
    }

    fn build(
        &self,
        name: &'static str,
        value: String,
        path: &'static str,
        http_only: bool,
    ) -> Cookie<'static> {
        let mut cookie = Cookie::build(name, value)
            .path(path)
            .http_only(http_only)
            .secure(self.settings.secure)
            .same_site(self.settings.same_site)
            .finish();
        if let Some(domain) = &self.settings.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    fn all(&self, access: String, refresh: String) -> [Cookie<'static>; 3] {
        [
            self.build(ACCESS_COOKIE, access, "/", true),
            self.build(REFRESH_COOKIE, refresh, REFRESH_PATH, true),
            self.build(LOGGED_IN_COOKIE, "true".into(), "/", false),
        ]
    }

    /// The three cookies of a fresh session.
    pub fn set(&self, response: &mut HttpResponse, tokens: &SessionTokens) {
        let [mut access, mut refresh, mut logged_in] =
            self.all(tokens.access.clone(), tokens.refresh.clone());
        access.set_max_age(max_age(self.settings.access_max_age));
        refresh.set_max_age(max_age(self.settings.refresh_max_age));
        logged_in.set_max_age(max_age(self.settings.refresh_max_age));
        for cookie in [access, refresh, logged_in] {
            add(response, &cookie);
        }
    }

    /// Expires the three cookies, repeating their path, domain and flags.
    pub fn clear(&self, response: &mut HttpResponse) {
        for mut cookie in self.all(String::new(), String::new()) {
            cookie.make_removal();
            add(response, &cookie);
        }
    }
}

fn max_age(d: std::time::Duration) -> time::Duration {
    time::Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn add(response: &mut HttpResponse, cookie: &Cookie<'_>) {
    // Only fails for a value that is not a valid header, which our cookies never are.
    if let Err(e) = response.add_cookie(cookie) {
        tracing::error!(error = %e, "cannot set cookie");
    }
}
