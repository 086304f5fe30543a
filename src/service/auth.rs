//! The service's flows, built once over one set of stores: sessions (log in, refresh, log
//! out, authenticate), accounts (register, profile, password, deletion), email (verify,
//! reset, address change) and admin (the list of users, roles). Each flow is its own type, in its own module.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::service::accounts::AccountFlows;
use crate::service::admin::AdminFlows;
use crate::service::attempts::{Limits, LoginAttempts};
use crate::service::core::{Core, Parts};
use crate::service::email::EmailFlows;
use crate::service::mail::{MailParts, Mailer};
use crate::service::mfa::{self, Codes, MfaFlows};
use crate::service::password::{Passwords, QueueMetrics};
use crate::service::sessions::SessionFlows;
use crate::service::tokens::Tokens;
use crate::store::sessions::SessionStore;
use crate::store::users::UserStore;
use crate::store::{StoreError, Stores};

/// A store and its state, for the healthchecker.
pub struct StoreCheck {
    pub name: &'static str,
    pub up: bool,
}

pub struct AuthService {
    pub sessions: SessionFlows,
    pub accounts: AccountFlows,
    pub email: EmailFlows,
    pub mfa: MfaFlows,
    pub admin: AdminFlows,
    core: Arc<Core>,
}

impl AuthService {
    /// The service as the settings describe it: its stores opened, its keys read.
    pub async fn from_settings(settings: &Settings, metrics: &Metrics) -> Result<Self, String> {
        let tokens = Tokens::from_settings(settings)?;
        let stores = Stores::open(settings).await?;
        let queue = QueueMetrics {
            depth: metrics.hash_queue.clone(),
            wait: metrics.hash_wait.clone(),
        };
        let passwords = Passwords::new(settings.hash_concurrency, queue)?;
        let limits = Limits {
            per_email: settings.login_attempts_limit,
            per_ip: settings.login_attempts_ip_limit,
            window: settings.login_attempts_window,
        };
        Self::new(stores, limits, tokens, passwords, metrics, settings)
    }

    /// Starts the mail worker and sender too (`service::mail`), so it needs a runtime.
    pub fn new(
        stores: Stores,
        limits: Limits,
        tokens: Tokens,
        passwords: Passwords,
        metrics: &Metrics,
        settings: &Settings,
    ) -> Result<Self, String> {
        let mail = &settings.mail;
        if settings.mfa.key.is_none() {
            tracing::warn!(
                "MFA_ENCRYPTION_KEY is unset: second-factor secrets are sealed with a key derived \
                 from REFRESH_TOKEN_PRIVATE_KEY, so changing that key makes them unreadable; set \
                 MFA_ENCRYPTION_KEY in production (`rs256-auth keys mfa-key` prints the key in use)"
            );
        }
        let key = mfa::key_in_use(&settings.mfa, &tokens);
        let codes = Codes::new(key, &settings.mfa.issuer)?;
        let stores = Arc::new(stores);
        let attempts = LoginAttempts::new(stores.clone(), limits);
        let mailer = Mailer::start(
            mail,
            MailParts {
                stores: stores.clone(),
                attempts: LoginAttempts::new(stores.clone(), limits),
                seal_secret: tokens.derive_secret("rs256-auth outbox seal v1"),
                sent: metrics.mail_sent.clone(),
                depth: metrics.outbox_depth.clone(),
            },
        )?;
        let core = Arc::new(Core::new(Parts {
            stores: stores.clone(),
            attempts,
            tokens,
            passwords,
            grace: settings.refresh_reuse_grace,
            refreshes: metrics.refreshes.clone(),
            mfa_events: metrics.mfa.clone(),
            mail: mailer,
            codes,
        }));
        Ok(AuthService {
            sessions: SessionFlows::new(core.clone()),
            accounts: AccountFlows::new(core.clone()),
            email: EmailFlows::new(core.clone()),
            mfa: MfaFlows::new(core.clone()),
            admin: AdminFlows::new(stores),
            core,
        })
    }

    /// The access keys as a JWK Set.
    pub fn jwks_json(&self) -> &str {
        self.core.tokens.jwks_json()
    }

    /// Each store in use, pinged at once. The embedded file holds users and sessions alike:
    /// it is named, and pinged, once.
    pub async fn check_stores(&self, within: Duration) -> Vec<StoreCheck> {
        let (users, sessions) = (&self.core.stores.users, &self.core.stores.sessions);
        if users.name() == sessions.name() {
            let up = answers(sessions.name(), sessions.ping(), within).await;
            return vec![StoreCheck {
                name: sessions.name(),
                up,
            }];
        }
        let (users_up, sessions_up) = tokio::join!(
            answers(users.name(), users.ping(), within),
            answers(sessions.name(), sessions.ping(), within)
        );
        vec![
            StoreCheck {
                name: users.name(),
                up: users_up,
            },
            StoreCheck {
                name: sessions.name(),
                up: sessions_up,
            },
        ]
    }

    /// The key admin-list cursors are sealed with, derived from the refresh signing key.
    pub fn cursor_key(&self) -> aws_lc_rs::hmac::Key {
        self.core
            .tokens
            .derive_key("rs256-auth admin list cursor v1")
    }
}

/// Whether `check` of the store `name` succeeds within `within`; a failure is logged with the
/// store's name and cause, as any store failure is, so that a `down` can be explained.
async fn answers(
    name: &'static str,
    check: impl Future<Output = Result<(), StoreError>>,
    within: Duration,
) -> bool {
    match tokio::time::timeout(within, check).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!(store = name, error = %e, "store check failed");
            false
        }
        Err(_) => {
            tracing::error!(store = name, "store check: no answer in time");
            false
        }
    }
}
