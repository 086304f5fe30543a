//! The worker behind `Mailer::submit`: looks the user up, applies the per-address limit, and
//! writes the link and its message (one transaction) or the notice into the outbox. It runs
//! off the request path, so a request's answer and its time say nothing of the address.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounterVec;
use tokio::sync::{Notify, Semaphore, mpsc};
use uuid::Uuid;

use crate::clock::now_ms;
use crate::domain::{Email, User};
use crate::error::{AppError, Result};
use crate::service::attempts::LoginAttempts;
use crate::service::mail::link::{Seal, new_token};
use crate::service::mail::message::{Kind, mask};
use crate::store::Stores;
use crate::store::mail::{Issued, MailStore, NewLink, Outgoing, Purpose};
use crate::store::users::UserStore;

/// Link mails per address per window (forgot-password, resend, address change, a sign-up
/// attempt); beyond it the request still answers 202 and nothing is sent.
const PER_ADDRESS: u64 = 3;
const PER_ADDRESS_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Jobs worked on at once.
const WORKERS: usize = 4;

/// What a request asks of the mail worker.
#[derive(Debug)]
pub enum Job {
    /// Register's first verification link: never limited.
    Welcome { user: Uuid },
    /// A new verification link, if the address has an unverified account.
    Resend { email: Email },
    /// A reset link, if the address has an account.
    Forgot { email: Email },
    /// Register with a taken address (`REQUIRE_VERIFIED_EMAIL`): its owner gets a reset link.
    SignupAttempt { email: Email },
    /// A confirm link to `to`, or, if `to` has an account, a notice to it.
    ChangeAddress { user: Uuid, to: Email },
    /// A notice with no link.
    Notice { kind: Kind, to: String },
}

/// A job and when it was asked for (Unix microseconds): of two links of one purpose, the one
/// asked for later stays, whatever order the worker gets to them in.
#[derive(Debug)]
pub struct Asked {
    pub job: Job,
    pub at: i64,
}

impl Job {
    /// Register's first link and the notices are never dropped (see `Mailer::submit`).
    pub fn is_kept(&self) -> bool {
        matches!(self, Job::Welcome { .. } | Job::Notice { .. })
    }

    /// The kind of mail the job may lead to, for the metrics.
    pub fn kind(&self) -> Kind {
        match self {
            Job::Welcome { .. } | Job::Resend { .. } => Kind::VerifyEmail,
            Job::Forgot { .. } => Kind::ResetPassword,
            Job::SignupAttempt { .. } => Kind::SignupAttempt,
            Job::ChangeAddress { .. } => Kind::ConfirmEmail,
            Job::Notice { kind, .. } => *kind,
        }
    }
}

pub struct Worker {
    pub stores: Arc<Stores>,
    pub attempts: LoginAttempts,
    pub seal: Arc<Seal>,
    pub wake: Arc<Notify>,
    pub sent: IntCounterVec,
    pub reset_ttl: Duration,
    pub verify_ttl: Duration,
}

impl Worker {
    /// Works on `kept` first, then on `jobs`, until both are closed.
    pub async fn run(
        self: Arc<Self>,
        mut kept: mpsc::UnboundedReceiver<Asked>,
        mut jobs: mpsc::Receiver<Asked>,
    ) {
        let permits = Arc::new(Semaphore::new(WORKERS));
        loop {
            let job = tokio::select! {
                biased;
                Some(job) = kept.recv() => job,
                Some(job) = jobs.recv() => job,
                else => return,
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let worker = self.clone();
            tokio::spawn(async move {
                if let Err(e) = worker.work(job).await {
                    tracing::warn!(error = %e, "mail job failed; no mail for it");
                }
                drop(permit);
            });
        }
    }

    async fn work(&self, Asked { job, at }: Asked) -> Result<()> {
        let users = &self.stores.users;
        match job {
            Job::Welcome { user } => {
                if let Some(user) = users.by_id(user).await?.filter(|u| !u.verified) {
                    self.link(&user, Purpose::Verify, Kind::VerifyEmail, &user.email, at)
                        .await?;
                }
            }
            Job::Resend { email } => {
                let user = users.by_email(&email).await?.filter(|u| !u.verified);
                if let Some(user) = user
                    && self.allowed(&user.email, Kind::VerifyEmail).await?
                {
                    self.link(&user, Purpose::Verify, Kind::VerifyEmail, &user.email, at)
                        .await?;
                }
            }
            Job::Forgot { email } => self.reset_link(&email, Kind::ResetPassword, at).await?,
            Job::SignupAttempt { email } => {
                self.reset_link(&email, Kind::SignupAttempt, at).await?;
            }
            Job::ChangeAddress { user, to } => {
                if !self.allowed(to.as_str(), Kind::ConfirmEmail).await? {
                    return Ok(());
                }
                if users.by_email(&to).await?.is_some() {
                    self.notice(Kind::AddressTaken, to.as_str()).await?;
                } else if let Some(user) = users.by_id(user).await? {
                    self.link(&user, Purpose::Confirm, Kind::ConfirmEmail, to.as_str(), at)
                        .await?;
                }
            }
            Job::Notice { kind, to } => self.notice(kind, &to).await?,
        }
        Ok(())
    }

    async fn reset_link(&self, email: &Email, kind: Kind, at: i64) -> Result<()> {
        if let Some(user) = self.stores.users.by_email(email).await?
            && self.allowed(&user.email, kind).await?
        {
            self.link(&user, Purpose::Reset, kind, &user.email, at)
                .await?;
        }
        Ok(())
    }

    /// Counts a link mail to `address`; `false` once over the limit.
    async fn allowed(&self, address: &str, kind: Kind) -> Result<bool> {
        let sent = self
            .attempts
            .count_mail(address, PER_ADDRESS_WINDOW)
            .await?;
        if sent > PER_ADDRESS {
            self.sent
                .with_label_values(&[kind.as_str(), "limited"])
                .inc();
            tracing::info!(kind = kind.as_str(), to = %mask(address),
                "mail not sent: over the per-address limit");
            return Ok(false);
        }
        Ok(true)
    }

    /// Issues a link of `purpose` for `user` as read, asked for `at`, and queues its message
    /// to `to`.
    async fn link(
        &self,
        user: &User,
        purpose: Purpose,
        kind: Kind,
        to: &str,
        at: i64,
    ) -> Result<()> {
        let (token, hash) = new_token().map_err(|_| AppError::internal("no randomness"))?;
        let (address, bound, ttl) = match purpose {
            Purpose::Verify => (user.email.clone(), String::new(), self.verify_ttl),
            Purpose::Reset => (
                user.email.clone(),
                user.password_hash.clone(),
                self.reset_ttl,
            ),
            Purpose::Confirm => (to.to_owned(), user.email.clone(), self.verify_ttl),
        };
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let link = NewLink {
            hash,
            purpose,
            user: user.id,
            address,
            bound,
            expires_at: now_ms().saturating_add(ttl_ms),
            requested_at: at,
        };
        let sealed = self
            .seal
            .seal(&token, to)
            .ok_or_else(|| AppError::internal("the link could not be sealed"))?;
        let mail = Outgoing {
            id: Uuid::new_v4(),
            kind: kind.as_str(),
            recipient: to.to_owned(),
            sealed: Some(sealed),
        };
        match self.stores.mail.issue(&link, &mail).await? {
            Issued::Done => {
                tracing::info!(kind = kind.as_str(), to = %mask(to), "mail queued");
                self.wake.notify_one();
            }
            Issued::Stale => {
                tracing::info!(kind = kind.as_str(), to = %mask(to),
                    "mail not queued: the user changed meanwhile");
            }
            Issued::Superseded => {
                tracing::info!(kind = kind.as_str(), to = %mask(to),
                    "mail not queued: a link asked for later exists");
            }
        }
        Ok(())
    }

    async fn notice(&self, kind: Kind, to: &str) -> Result<()> {
        let mail = Outgoing {
            id: Uuid::new_v4(),
            kind: kind.as_str(),
            recipient: to.to_owned(),
            sealed: None,
        };
        self.stores.mail.queue(&mail).await?;
        tracing::info!(kind = kind.as_str(), to = %mask(to), "mail queued");
        self.wake.notify_one();
        Ok(())
    }
}
