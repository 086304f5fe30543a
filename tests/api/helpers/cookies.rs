//! `Set-Cookie` headers: read one by one, and the three session cookies as a cookie policy
//! sets and clears them.

use std::collections::HashMap;

use reqwest::Response;
use reqwest::header::HeaderMap;

use super::Session;

/// One `Set-Cookie` header, split into name, value and attributes (lowercased names).
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub attributes: HashMap<String, String>,
}

impl SetCookie {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.attributes.contains_key(&name.to_ascii_lowercase())
    }
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<SetCookie> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|raw| {
            let mut parts = raw.split(';').map(str::trim);
            let (name, value) = parts
                .next()
                .and_then(|p| p.split_once('='))
                .unwrap_or(("", ""));
            let attributes = parts
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                    None => (p.to_ascii_lowercase(), String::new()),
                })
                .collect();
            SetCookie {
                name: name.into(),
                value: value.into(),
                attributes,
            }
        })
        .collect()
}

pub fn cookie<'a>(cookies: &'a [SetCookie], name: &str) -> &'a SetCookie {
    cookies
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no Set-Cookie for {name} in {cookies:?}"))
}

/// The tokens of a login or refresh response, from its cookies.
pub fn session_from(response: &Response) -> Session {
    let cookies = set_cookies(response.headers());
    Session {
        access: cookie(&cookies, "access_token").value.clone(),
        refresh: cookie(&cookies, "refresh_token").value.clone(),
    }
}

/// The cookie attributes a configuration should produce.
#[derive(Clone, Copy)]
pub struct Policy {
    secure: bool,
    same_site: &'static str,
    domain: Option<&'static str>,
}

pub const DEFAULT_POLICY: Policy = Policy {
    secure: false,
    same_site: "Lax",
    domain: None,
};
pub const STRICT_POLICY: Policy = Policy {
    secure: true,
    same_site: "Strict",
    domain: Some("example.test"),
};
pub const STRICT_SETTINGS: [(&str, &str); 3] = [
    ("COOKIE_SECURE", "true"),
    ("COOKIE_SAMESITE", "Strict"),
    ("COOKIE_DOMAIN", "example.test"),
];

/// Path and HttpOnly of each of the three cookies.
const COOKIE_SHAPES: [(&str, &str, bool); 3] = [
    ("access_token", "/", true),
    ("refresh_token", "/api/auth", true),
    ("logged_in", "/", false),
];

/// Every attribute a cookie must carry, and nothing else (Expires aside).
fn expected_attributes(
    path: &str,
    http_only: bool,
    max_age: u64,
    policy: Policy,
) -> HashMap<String, String> {
    let mut attributes = HashMap::from([
        ("path".to_owned(), path.to_owned()),
        ("max-age".to_owned(), max_age.to_string()),
        ("samesite".to_owned(), policy.same_site.to_owned()),
    ]);
    if http_only {
        attributes.insert("httponly".into(), String::new());
    }
    if policy.secure {
        attributes.insert("secure".into(), String::new());
    }
    if let Some(domain) = policy.domain {
        attributes.insert("domain".into(), domain.to_owned());
    }
    attributes
}

fn without_expires(cookie: &SetCookie) -> HashMap<String, String> {
    let mut attributes = cookie.attributes.clone();
    attributes.remove("expires");
    attributes
}

/// The three session cookies are set, each with exactly the attributes of the policy.
pub fn assert_cookies_set(
    response: &Response,
    policy: Policy,
    access_max_age: u64,
    refresh_max_age: u64,
) {
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    for (name, path, http_only) in COOKIE_SHAPES {
        let cookie = cookie(&cookies, name);
        let max_age = if name == "access_token" {
            access_max_age
        } else {
            refresh_max_age
        };
        assert_eq!(
            without_expires(cookie),
            expected_attributes(path, http_only, max_age, policy),
            "{name}"
        );
        assert!(!cookie.value.is_empty(), "{name} has a value");
    }
    assert_eq!(cookie(&cookies, "logged_in").value, "true");
}

/// The three session cookies are expired with the same attributes they were set with.
pub fn assert_cookies_cleared(response: &Response, policy: Policy) {
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    for (name, path, http_only) in COOKIE_SHAPES {
        let cookie = cookie(&cookies, name);
        assert_eq!(
            without_expires(cookie),
            expected_attributes(path, http_only, 0, policy),
            "{name}"
        );
        assert!(
            cookie.value.is_empty() || name == "logged_in",
            "{name} keeps a value: {cookie:?}"
        );
    }
}
