//! Typed settings from the environment (and `app.env`), as docs/api.md lists them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::cookie::SameSite;
use base64::Engine;

/// A setting that is missing or malformed, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

fn bad(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        reason: reason.into(),
    }
}

/// A PEM-encoded RSA key pair, read but not yet parsed, and the extra public keys that
/// verify tokens of the same kind during a key rotation.
#[derive(Clone)]
pub struct KeyPairPem {
    pub private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
    pub extra_public: Vec<PublicKeyPem>,
}

/// One extra public key as PEM, with where it came from, for error messages.
#[derive(Clone)]
pub struct PublicKeyPem {
    /// The variable, and the item or file: `ACCESS_TOKEN_EXTRA_PUBLIC_KEYS: key 2`.
    pub source: String,
    pub pem: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct CookieSettings {
    pub secure: bool,
    pub same_site: SameSite,
    pub domain: Option<String>,
    pub access_max_age: Duration,
    pub refresh_max_age: Duration,
}

/// One CIDR block, for `TRUSTED_PROXIES`.
#[derive(Clone, Debug, PartialEq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// Where users live: Postgres, or the embedded SQLite file.
#[derive(Clone, Debug, PartialEq)]
pub enum Database {
    Postgres(String),
    Sqlite(PathBuf),
}

/// Where sessions and login counters live when they are not in the SQLite file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// `REDIS_URL`: one server.
    Single(String),
    /// `REDIS_CLUSTER_URLS`: some nodes of a Redis Cluster; the rest are discovered.
    Cluster(Vec<String>),
}

/// `DATABASE_URL` when unset: the embedded store, so a fresh clone runs with nothing else.
pub const DEFAULT_SQLITE_PATH: &str = "data/rs256-auth.db";

#[derive(Clone)]
pub struct Settings {
    pub database: Database,
    /// Sessions and login counters; unset keeps them in the SQLite file.
    pub redis: Option<RedisTarget>,
    pub redis_key_prefix: String,
    /// `REDIS_WAIT_REPLICAS`: how many replicas must have a session write (a login, a
    /// rotation, a logout, an ended session) before the client is told it happened; 0: none.
    pub redis_wait_replicas: u32,
    pub host: String,
    pub port: u16,
    pub client_origins: Vec<String>,
    pub access_keys: KeyPairPem,
    pub refresh_keys: KeyPairPem,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub issuer: String,
    pub audience: String,
    pub cookies: CookieSettings,
    pub refresh_reuse_grace: Duration,
    pub login_attempts_limit: u32,
    pub login_attempts_window: Duration,
    pub login_attempts_ip_limit: u32,
    pub trusted_proxies: Vec<Cidr>,
    /// How many argon2 computations may run at once (each holds ~19 MiB).
    pub hash_concurrency: usize,
    /// `METRICS_PORT`: serve `/metrics` there (on `host`) instead of on `port`.
    pub metrics_port: Option<u16>,
    pub log_format: LogFormat,
    pub mail: MailSettings,
    pub mfa: MfaSettings,
}

/// The second factor (docs/api.md, Second factor).
#[derive(Clone)]
pub struct MfaSettings {
    /// `MFA_ENCRYPTION_KEY`: seals authenticator secrets; `None`: derived from the refresh
    /// signing key.
    pub key: Option<[u8; 32]>,
    /// `MFA_ISSUER`: the name an authenticator app shows beside the codes.
    pub issuer: String,
}

impl std::fmt::Debug for MfaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaSettings")
            .field("key", &self.key.map(|_| "[redacted]"))
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Mail (docs/api.md, Email). `Debug` leaves out `SMTP_URL`, which may hold a password.
#[derive(Clone)]
pub struct MailSettings {
    /// `SMTP_URL`; `None`: `.eml` files in `dir`.
    pub smtp_url: Option<String>,
    /// `MAIL_FROM`.
    pub from: String,
    /// `MAIL_DIR`.
    pub dir: std::path::PathBuf,
    /// `APP_URL`, with no trailing `/`: every link starts with it.
    pub app_url: String,
    /// `REQUIRE_VERIFIED_EMAIL`.
    pub require_verified: bool,
    /// `EMAIL_TOKEN_TTL_RESET`.
    pub reset_ttl: Duration,
    /// `EMAIL_TOKEN_TTL_VERIFY`: verify and confirm links.
    pub verify_ttl: Duration,
}

/// `LOG_FORMAT`: lines for people (the default), or JSON lines for a log pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Settings {
    /// Reads `app.env` (if present) into the process environment, then the settings.
    /// Variables already set in the environment win over the file.
    pub fn load() -> Result<Self, ConfigError> {
        match dotenvy::from_filename("app.env") {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(bad("app.env", e.to_string())),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the settings from any source of variables (the environment, or a test's map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let access_ttl = env.duration("ACCESS_TOKEN_EXPIRED_IN", "15m")?;
        let refresh_ttl = env.duration("REFRESH_TOKEN_EXPIRED_IN", "60m")?;
        if access_ttl > refresh_ttl {
            // The session lives as long as its refresh token; a longer access token would die early.
            return Err(bad(
                "ACCESS_TOKEN_EXPIRED_IN",
                "must not be longer than REFRESH_TOKEN_EXPIRED_IN",
            ));
        }
        let cookie_secure = env.boolean("COOKIE_SECURE", false)?;
        let same_site = env.same_site()?;
        if same_site == SameSite::None && !cookie_secure {
            return Err(bad("COOKIE_SAMESITE", "None requires COOKIE_SECURE=true"));
        }
        let refresh_max_age = env.minutes("REFRESH_TOKEN_MAXAGE")?.unwrap_or(refresh_ttl);
        let database = env.database()?;
        let redis = env.redis()?;
        if matches!(database, Database::Postgres(_)) && redis.is_none() {
            // Sessions in a local file would not be shared by the instances that share users.
            return Err(bad(
                "REDIS_URL",
                "(or REDIS_CLUSTER_URLS) is required when DATABASE_URL is Postgres (several instances must share sessions)",
            ));
        }
        let redis_wait_replicas = env.number("REDIS_WAIT_REPLICAS", 0)?;
        if redis_wait_replicas > 0 && redis.is_none() {
            // Sessions in the SQLite file have no replicas to wait for.
            return Err(bad(
                "REDIS_WAIT_REPLICAS",
                "needs REDIS_URL or REDIS_CLUSTER_URLS (the embedded store has no replicas)",
            ));
        }
        let port = env.number("PORT", 8000)?;
        let metrics_port = env.metrics_port()?;
        if port != 0 && metrics_port == Some(port) {
            return Err(bad("METRICS_PORT", "must differ from PORT"));
        }
        Ok(Settings {
            database,
            redis,
            redis_key_prefix: env.or("REDIS_KEY_PREFIX", "rs256:"),
            redis_wait_replicas,
            host: env.or("HOST", "0.0.0.0"),
            port,
            client_origins: env.origins()?,
            access_keys: env.key_pair("ACCESS_TOKEN")?,
            refresh_keys: env.key_pair("REFRESH_TOKEN")?,
            access_ttl,
            refresh_ttl,
            issuer: env.or("JWT_ISSUER", "rs256-auth"),
            audience: env.or("JWT_AUDIENCE", "rs256-auth"),
            cookies: CookieSettings {
                secure: cookie_secure,
                same_site,
                domain: env.get("COOKIE_DOMAIN"),
                access_max_age: env.minutes("ACCESS_TOKEN_MAXAGE")?.unwrap_or(access_ttl),
                refresh_max_age,
            },
            refresh_reuse_grace: env.duration("REFRESH_REUSE_GRACE", "10s")?,
            login_attempts_limit: env.limit("LOGIN_ATTEMPTS_LIMIT", 10)?,
            login_attempts_window: env.duration("LOGIN_ATTEMPTS_WINDOW", "15m")?,
            login_attempts_ip_limit: env.limit("LOGIN_ATTEMPTS_IP_LIMIT", 100)?,
            trusted_proxies: env.cidrs("TRUSTED_PROXIES")?,
            hash_concurrency: env.number("HASH_CONCURRENCY", default_hash_concurrency())?,
            metrics_port,
            log_format: env.log_format()?,
            mail: env.mail()?,
            mfa: env.mfa()?,
        })
    }
}

fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Accepts the seed's bare `host:port` as well as a full `redis://` URL.
fn redis_url(raw: &str) -> String {
    if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("redis://{raw}")
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn redis(&self) -> Result<Option<RedisTarget>, ConfigError> {
        match (self.get("REDIS_URL"), self.get("REDIS_CLUSTER_URLS")) {
            (Some(_), Some(_)) => Err(bad(
                "REDIS_CLUSTER_URLS",
                "set either REDIS_URL (one server) or REDIS_CLUSTER_URLS (a cluster), not both",
            )),
            (Some(url), None) => Ok(Some(RedisTarget::Single(redis_url(&url)))),
            (None, Some(list)) => {
                let nodes: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(redis_url)
                    .collect();
                if nodes.is_empty() {
                    return Err(bad("REDIS_CLUSTER_URLS", "names no node"));
                }
                Ok(Some(RedisTarget::Cluster(nodes)))
            }
            (None, None) => Ok(None),
        }
    }

    fn metrics_port(&self) -> Result<Option<u16>, ConfigError> {
        let Some(raw) = self.get("METRICS_PORT") else {
            return Ok(None);
        };
        let port: u16 = raw
            .parse()
            .map_err(|_| bad("METRICS_PORT", format!("`{raw}` is not a port number")))?;
        Ok(Some(port))
    }

    fn log_format(&self) -> Result<LogFormat, ConfigError> {
        match self
            .get("LOG_FORMAT")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(v) => Err(bad("LOG_FORMAT", format!("`{v}` is not text or json"))),
        }
    }

    fn mail(&self) -> Result<MailSettings, ConfigError> {
        let smtp_url = self.get("SMTP_URL");
        if let Some(url) = &smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            // Never the value itself: it may carry a password.
            return Err(bad("SMTP_URL", "must start with smtp:// or smtps://"));
        }
        let origins = self.origins()?;
        let app_url = match self.get("APP_URL") {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => origins.first().cloned().unwrap_or_default(),
        };
        if !is_base_url(&app_url) {
            return Err(bad(
                "APP_URL",
                format!("`{app_url}` is not an http(s) URL such as https://app.example.com"),
            ));
        }
        Ok(MailSettings {
            smtp_url,
            from: self.or("MAIL_FROM", "rs256-auth <no-reply@localhost>"),
            dir: self.or("MAIL_DIR", "data/mail").into(),
            app_url,
            require_verified: self.boolean("REQUIRE_VERIFIED_EMAIL", false)?,
            reset_ttl: self.duration("EMAIL_TOKEN_TTL_RESET", "30m")?,
            verify_ttl: self.duration("EMAIL_TOKEN_TTL_VERIFY", "24h")?,
        })
    }

    fn mfa(&self) -> Result<MfaSettings, ConfigError> {
        const VAR: &str = "MFA_ENCRYPTION_KEY";
        let key = match self.get(VAR) {
            None => None,
            // Never the value itself: it is a secret.
            Some(raw) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(raw.as_bytes())
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or_else(|| {
                        bad(
                            VAR,
                            "must be 32 bytes in base64 (make one with `openssl rand -base64 32`)",
                        )
                    })?,
            ),
        };
        let issuer = self.or("MFA_ISSUER", "rs256-auth");
        if issuer.contains(':') {
            // The otpauth label is `issuer:account`.
            return Err(bad("MFA_ISSUER", "must not contain `:`"));
        }
        Ok(MfaSettings { key, issuer })
    }

    /// A set, non-blank value; blank counts as unset so `VAR=` in app.env means "default".
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// `postgres://...`, `sqlite:PATH` (or `sqlite://PATH`), or unset for the default file.
    fn database(&self) -> Result<Database, ConfigError> {
        let Some(raw) = self.get("DATABASE_URL") else {
            return Ok(Database::Sqlite(DEFAULT_SQLITE_PATH.into()));
        };
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Database::Postgres(raw));
        }
        let Some(rest) = raw.strip_prefix("sqlite:") else {
            return Err(bad(
                "DATABASE_URL",
                "must start with postgres:// or sqlite: (or be unset for the embedded file)",
            ));
        };
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() || path.contains('?') || path.starts_with(":memory:") {
            // Sessions must survive a restart, and options would be silently ignored.
            return Err(bad(
                "DATABASE_URL",
                format!("`{raw}` is not a SQLite file path such as sqlite:data/rs256-auth.db"),
            ));
        }
        Ok(Database::Sqlite(path.into()))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| bad(name, format!("`{v}` is not a valid number"))),
        }
    }

    /// A limit of 0 would refuse every login, forever: surely a typo.
    fn limit(&self, name: &str, default: u32) -> Result<u32, ConfigError> {
        match self.number(name, default)? {
            0 => Err(bad(name, "must be at least 1")),
            n => Ok(n),
        }
    }

    fn boolean(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).as_deref() {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(bad(name, format!("`{v}` is not one of true, false, 1, 0"))),
        }
    }

    fn duration(&self, name: &str, default: &str) -> Result<Duration, ConfigError> {
        let raw = self.or(name, default);
        parse_duration(&raw).ok_or_else(|| {
            bad(
                name,
                format!("`{raw}` is not a duration such as 30s, 15m, 1h or 7d"),
            )
        })
    }

    fn minutes(&self, name: &str) -> Result<Option<Duration>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                let secs = v.parse::<u64>().ok().and_then(|m| m.checked_mul(60));
                match secs.map(Duration::from_secs) {
                    Some(d) if !d.is_zero() && d <= MAX_DURATION => Ok(Some(d)),
                    _ => Err(bad(
                        name,
                        format!("`{v}` is not a number of minutes from 1 to 5256000 (ten years)"),
                    )),
                }
            }
        }
    }

    fn same_site(&self) -> Result<SameSite, ConfigError> {
        match self
            .or("COOKIE_SAMESITE", "Lax")
            .to_ascii_lowercase()
            .as_str()
        {
            "strict" => Ok(SameSite::Strict),
            "lax" => Ok(SameSite::Lax),
            "none" => Ok(SameSite::None),
            other => Err(bad(
                "COOKIE_SAMESITE",
                format!("`{other}` is not Strict, Lax or None"),
            )),
        }
    }

    fn origins(&self) -> Result<Vec<String>, ConfigError> {
        let raw = self.or("CLIENT_ORIGIN", "http://localhost:3000");
        let origins: Vec<String> = raw
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        for origin in &origins {
            if !is_origin(origin) {
                return Err(bad(
                    "CLIENT_ORIGIN",
                    format!("`{origin}` is not an origin such as https://app.example.com"),
                ));
            }
        }
        Ok(origins)
    }

    fn cidrs(&self, name: &str) -> Result<Vec<Cidr>, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(Vec::new());
        };
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_cidr(s)
                    .ok_or_else(|| bad(name, format!("`{s}` is not a CIDR such as 10.0.0.0/8")))
            })
            .collect()
    }

    /// `PREFIX_PRIVATE_KEY` / `PREFIX_PUBLIC_KEY` as base64 of the PEM, or `..._FILE` naming a PEM file.
    fn key_pair(&self, prefix: &str) -> Result<KeyPairPem, ConfigError> {
        Ok(KeyPairPem {
            private_pem: self.pem(&format!("{prefix}_PRIVATE_KEY"))?,
            public_pem: self.pem(&format!("{prefix}_PUBLIC_KEY"))?,
            extra_public: self.extra_public_keys(prefix)?,
        })
    }

    /// `PREFIX_EXTRA_PUBLIC_KEYS` (base64 PEMs, comma-separated), then every `*.pem` file of
    /// `PREFIX_EXTRA_PUBLIC_KEYS_DIR`; either, both or neither may be set.
    fn extra_public_keys(&self, prefix: &str) -> Result<Vec<PublicKeyPem>, ConfigError> {
        let list_var = format!("{prefix}_EXTRA_PUBLIC_KEYS");
        let dir_var = format!("{list_var}_DIR");
        let mut keys = Vec::new();
        if let Some(list) = self.get(&list_var) {
            let items = list.split(',').map(str::trim).filter(|s| !s.is_empty());
            for (index, item) in items.enumerate() {
                let number = index + 1;
                let pem = decode_base64(item).ok_or_else(|| {
                    bad(
                        &list_var,
                        format!("key {number} is not valid base64 (of a PEM file)"),
                    )
                })?;
                keys.push(PublicKeyPem {
                    source: format!("{list_var}: key {number}"),
                    pem,
                });
            }
        }
        if let Some(dir) = self.get(&dir_var) {
            keys.extend(read_pem_dir(&dir_var, &dir)?);
        }
        Ok(keys)
    }

    fn pem(&self, name: &str) -> Result<Vec<u8>, ConfigError> {
        let file_var = format!("{name}_FILE");
        match (self.get(name), self.get(&file_var)) {
            (Some(_), Some(_)) => Err(bad(
                name,
                format!("set either {name} or {file_var}, not both"),
            )),
            (None, None) => Err(bad(name, format!("is required (or {file_var})"))),
            (None, Some(path)) => std::fs::read(&path)
                .map_err(|e| bad(&file_var, format!("cannot read `{path}`: {e}"))),
            (Some(b64), None) => decode_base64(&b64).ok_or_else(|| {
                bad(
                    name,
                    "is not valid base64 (it holds the PEM file, base64-encoded)",
                )
            }),
        }
    }
}

/// Standard base64, on one line or wrapped (any whitespace inside is dropped).
fn decode_base64(raw: &str) -> Option<Vec<u8>> {
    let compact: String = raw.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// Every `*.pem` file of `dir`, sorted by name. Other entries are ignored, and so are hidden
/// files, as the shell's `*.pem` would. A `.pem` entry that cannot be read is an error: a
/// key silently left out would log users out mid-rotation.
fn read_pem_dir(var: &str, dir: &str) -> Result<Vec<PublicKeyPem>, ConfigError> {
    let unreadable = |e: std::io::Error| bad(var, format!("cannot read `{dir}`: {e}"));
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name();
        let is_pem = name
            .to_str()
            .is_some_and(|n| n.ends_with(".pem") && !n.starts_with('.'));
        if is_pem {
            paths.push(entry.path());
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let shown = path.display().to_string();
            let pem = std::fs::read(&path)
                .map_err(|e| bad(var, format!("cannot read `{shown}`: {e}")))?;
            Ok(PublicKeyPem {
                source: format!("{var}: `{shown}`"),
                pem,
            })
        })
        .collect()
}

/// `scheme://host[:port]`, as browsers send in `Origin`, and nothing more.
fn is_origin(raw: &str) -> bool {
    let Ok(uri) = raw.parse::<actix_web::http::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https"))
        && uri
            .authority()
            .is_some_and(|a| !a.host().is_empty() && !a.as_str().contains('@'))
        && uri
            .path_and_query()
            .is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/")
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp", &self.smtp_url.as_ref().map(|_| "[set]"))
            .field("from", &self.from)
            .field("dir", &self.dir)
            .field("app_url", &self.app_url)
            .field("require_verified", &self.require_verified)
            .finish_non_exhaustive()
    }
}

/// An origin, or an origin and a path: where the SPA's pages are. No query or fragment, since
/// links append `/page?token=...`.
fn is_base_url(raw: &str) -> bool {
    let Ok(uri) = raw.parse::<actix_web::http::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https"))
        && uri
            .authority()
            .is_some_and(|a| !a.host().is_empty() && !a.as_str().contains('@'))
        && uri.query().is_none()
        && !raw.contains('#')
}

/// Longer lifetimes or windows are surely typos, and would overflow timestamps far enough out.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// `30s`, `15m`, `1h`, `7d`; a positive whole number and one unit, at most ten years.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.len().checked_sub(1)?;
    let (number, unit) = raw.split_at(split);
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    let duration = Duration::from_secs(seconds);
    (duration <= MAX_DURATION).then_some(duration)
}

fn parse_cidr(raw: &str) -> Option<Cidr> {
    let (addr, prefix) = match raw.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (raw.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some(Cidr { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("3650d"), Some(MAX_DURATION));
        assert_eq!(parse_duration("3651d"), None);
        for bad in [
            "",
            "m",
            "15",
            "0m",
            "-5m",
            "1.5h",
            "15 m",
            "15M",
            "9999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cidrs_parse_v4_and_v6() {
        assert_eq!(parse_cidr("10.0.0.0/8").map(|c| c.prefix), Some(8));
        assert_eq!(parse_cidr("::1").map(|c| c.prefix), Some(128));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("nope").is_none());
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "http://localhost:3000",
            "https://app.example.com",
            "http://[::1]:8080",
        ] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "localhost:3000",
            "ftp://x.example",
            "https://a.example/path",
            "https://a.example?q",
            "http://",
            "https://exa mple.com",
            "https://u@a.example",
            "*",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn bare_redis_host_port_becomes_a_url() {
        assert_eq!(redis_url("127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redis_url("redis://h:1/3"), "redis://h:1/3");
    }

    fn mail_of(vars: &[(&str, &str)]) -> Result<MailSettings, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let get = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Env(&get).mail()
    }

    #[test]
    fn mail_defaults_to_files_and_the_first_client_origin() {
        let mail = mail_of(&[("CLIENT_ORIGIN", "https://a.example, https://b.example/")]).unwrap();
        assert_eq!(mail.smtp_url, None);
        assert_eq!(mail.dir, std::path::PathBuf::from("data/mail"));
        assert_eq!(mail.app_url, "https://a.example");
        assert_eq!(mail.from, "rs256-auth <no-reply@localhost>");
        assert!(!mail.require_verified);
        assert_eq!(mail.reset_ttl, Duration::from_secs(1800));
        assert_eq!(mail.verify_ttl, Duration::from_secs(86_400));
        let mail = mail_of(&[("APP_URL", "https://app.example/auth/")]).unwrap();
        assert_eq!(mail.app_url, "https://app.example/auth");
    }

    #[test]
    fn mail_settings_that_cannot_work_are_refused_by_name() {
        for (var, value) in [
            ("APP_URL", "app.example"),
            ("APP_URL", "https://app.example/?a=1"),
            ("APP_URL", "https://app.example/#x"),
            ("APP_URL", "ftp://app.example"),
            ("SMTP_URL", "http://mail:25"),
            ("REQUIRE_VERIFIED_EMAIL", "yes"),
            ("EMAIL_TOKEN_TTL_RESET", "30"),
        ] {
            let error = mail_of(&[(var, value)]).expect_err(value);
            assert_eq!(error.var, var);
        }
        // An SMTP_URL's password never reaches the message.
        let error = mail_of(&[("SMTP_URL", "mailto://u:hunter2@mail")]).unwrap_err();
        assert!(!error.reason.contains("hunter2"), "{}", error.reason);
    }
}
