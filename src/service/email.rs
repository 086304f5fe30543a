//! Email: prove an address, recover a forgotten password, move to a new address. The mails
//! are `service::mail`'s; these are the requests around them.
//!
//! Asking for a mail answers the same whatever the address (the worker decides off the
//! request path). A link's token is spent in the transaction that makes its change, so it
//! works once on every instance. Every ask, and every token that fails, counts against the
//! client IP's failed-login counter, so neither addresses nor tokens can be tried at speed.

use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::now_ms;
use crate::domain::{Email, User};
use crate::error::{AppError, Result};
use crate::service::attempts::Verdict;
use crate::service::core::Core;
use crate::service::mail::{Job, Kind};
use crate::service::opaque::hash_of;
use crate::store::mail::{MailStore, Notice, Purpose, Spent};

pub struct EmailFlows {
    core: Arc<Core>,
}

impl EmailFlows {
    pub(super) fn new(core: Arc<Core>) -> Self {
        EmailFlows { core }
    }

    /// Resend a verification link, if the address has an unverified account.
    pub async fn resend(&self, email: Email, ip: Option<IpAddr>) -> Result<()> {
        self.count_ip(ip).await?;
        self.core.mail.submit(Job::Resend { email });
        Ok(())
    }

    /// Mail a reset link, if the address has an account.
    pub async fn forgot(&self, email: Email, ip: Option<IpAddr>) -> Result<()> {
        self.count_ip(ip).await?;
        self.core.mail.submit(Job::Forgot { email });
        Ok(())
    }

    /// Spend a verify link: the user, verified. Does not log in.
    pub async fn verify(&self, token: &str, ip: Option<IpAddr>) -> Result<User> {
        self.count_ip(ip).await?;
        let Some(hash) = hash_of(token) else {
            return Err(AppError::LinkInvalid);
        };
        let spent = self.core.stores.mail.verify(&hash, now_ms()).await?;
        self.granted(spent, ip).await
    }

    /// Spend a reset link: the new password, the address verified, every session ended, the
    /// login counter cleared, and a notice. Does not log in.
    pub async fn reset(&self, token: &str, password: String, ip: Option<IpAddr>) -> Result<()> {
        let core = &self.core;
        self.count_ip(ip).await?;
        let Some(hash) = hash_of(token) else {
            return Err(AppError::LinkInvalid);
        };
        // Checked before argon2 runs, so that bad tokens cost no hashing; spent below.
        if !core
            .stores
            .mail
            .is_live(&hash, Purpose::Reset, now_ms())
            .await?
        {
            return Err(AppError::LinkInvalid);
        }
        let password_hash = core.passwords.hash(password).await?;
        let notice = Notice::new(Kind::PasswordChanged.as_str());
        let spent = core
            .stores
            .mail
            .reset(&hash, &password_hash, now_ms(), &notice)
            .await?;
        let Spent::Done { user, .. } = spent else {
            return self.granted(spent, ip).await.map(drop);
        };
        core.mail.wake();
        // The stamp before the sweep, as for a password change (`AccountFlows`).
        core.sweep(user.id, None).await?;
        core.attempts.forgive_ip(ip).await?;
        core.attempts
            .succeeded(&Email::normalize(&user.email), None)
            .await?;
        Ok(())
    }

    /// Ask to move `user` to `to`: after their password (and code, with a second factor), a
    /// confirm link goes to `to` (or, if `to` has an account, a notice). A wrong password or
    /// code counts as a failed login.
    pub async fn change_address(
        &self,
        user: &User,
        to: Email,
        password: String,
        code: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<()> {
        let core = &self.core;
        // Each asks for a mail to an address of the caller's choice: counted like the
        // requests for a link, on top of the password's own count.
        self.count_ip(ip).await?;
        let checked = core
            .check_password(&Email::normalize(&user.email), password, ip)
            .await?;
        // Before the code: a request refused anyway must not spend one.
        if to.as_str() == checked.email {
            return Err(AppError::validation("email", "is already your address"));
        }
        core.step_up(&checked, code, ip).await?;
        core.mail.submit(Job::ChangeAddress {
            user: checked.id,
            email: checked.email,
            password_hash: checked.password_hash,
            to,
        });
        Ok(())
    }

    /// Spend a confirm link: the user at the new address, verified; the old one is told.
    pub async fn confirm(&self, token: &str, ip: Option<IpAddr>) -> Result<User> {
        self.count_ip(ip).await?;
        let Some(hash) = hash_of(token) else {
            return Err(AppError::LinkInvalid);
        };
        let notice = Notice::new(Kind::EmailChanged.as_str());
        let spent = self
            .core
            .stores
            .mail
            .confirm(&hash, now_ms(), &notice)
            .await?;
        let user = self.granted(spent, ip).await?;
        self.core.mail.wake();
        Ok(user)
    }

    /// A spent link's answer. A change is announced (every instance reads the user again); a
    /// good token takes back its count from the IP.
    async fn granted(&self, spent: Spent, ip: Option<IpAddr>) -> Result<User> {
        let core = &self.core;
        match spent {
            Spent::Done { user, changed } => {
                if changed {
                    core.user_changed(user.id).await?;
                }
                core.attempts.forgive_ip(ip).await?;
                Ok(user.without_hash())
            }
            Spent::Invalid => Err(AppError::LinkInvalid),
            Spent::EmailTaken => {
                core.attempts.forgive_ip(ip).await?;
                Err(AppError::EmailTaken)
            }
        }
    }

    async fn count_ip(&self, ip: Option<IpAddr>) -> Result<()> {
        match self.core.attempts.begin_ip(ip).await? {
            Verdict::Allowed => Ok(()),
            Verdict::Limited { retry_after } => Err(AppError::rate_limited(retry_after)),
        }
    }
}
