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
use crate::service::mail::message::{Kind, mask};
use crate::service::opaque::{Seal, new_token};
use crate::store::Stores;
use crate::store::mail::{Issued, MailStore, NewLink, Outgoing, Purpose};
use crate::store::users::UserStore;

/// Link mails per address per window (forgot-password, resend, address change, a sign-up
/// attempt); beyond it the request still answers 202 and nothing is sent.
const PER_ADDRESS: u64 = 3;
const PER_ADDRESS_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Jobs worked on at once.
const WORKERS: usize = 4;

/// What a request asks of the mail worker. (No `Debug`: a job may hold a password hash.)
pub enum Job {
    /// A new verification link, if the address has an unverified account.
    Resend { email: Email },
    /// A reset link, if the address has an account.
    Forgot { email: Email },
    /// Register with a taken address (`REQUIRE_VERIFIED_EMAIL`): its owner gets a reset link.
    SignupAttempt { email: Email },
    /// A confirm link to `to`, or, if `to` has an account, a notice to it. `email` and
    /// `password_hash` are the user's as the request checked them: the link is bound to
    /// them, so a reset or a password change in between kills it.
    ChangeAddress {
        user: Uuid,
        email: String,
        password_hash: String,
        to: Email,
    },
}

/// A job and when it was asked for (Unix microseconds): of two links of one purpose, the one
/// asked for later stays, whatever order the worker gets to them in.
pub struct Asked {
    pub job: Job,
    pub at: i64,
}

impl Job {
    /// The kind of mail the job may lead to, for the metrics.
    pub fn kind(&self) -> Kind {
        match self {
            Job::Resend { .. } => Kind::VerifyEmail,
            Job::Forgot { .. } => Kind::ResetPassword,
            Job::SignupAttempt { .. } => Kind::SignupAttempt,
            Job::ChangeAddress { .. } => Kind::ConfirmEmail,
        }
    }
}

/// What a link is bound to: the user, at this address, with this password hash (if given).
struct Bound {
    user: Uuid,
    email: String,
    password: Option<String>,
}

impl Bound {
    /// The user as read, password included.
    fn checked(user: &User) -> Self {
        Bound {
            user: user.id,
            email: user.email.clone(),
            password: Some(user.password_hash.clone()),
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
    /// Works on `jobs`, a few at once, until the channel closes.
    pub async fn run(self: Arc<Self>, mut jobs: mpsc::Receiver<Asked>) {
        let permits = Arc::new(Semaphore::new(WORKERS));
        while let Some(job) = jobs.recv().await {
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
            Job::Resend { email } => {
                let user = users.by_email(&email).await?.filter(|u| !u.verified);
                if let Some(user) = user
                    && self.allowed(&user.email, Kind::VerifyEmail).await?
                {
                    let sent = self.welcome(&user, at).await?;
                    self.unless_sent(sent, &user.email).await?;
                }
            }
            Job::Forgot { email } => self.reset_link(&email, Kind::ResetPassword, at).await?,
            Job::SignupAttempt { email } => {
                self.reset_link(&email, Kind::SignupAttempt, at).await?;
            }
            Job::ChangeAddress {
                user,
                email,
                password_hash,
                to,
            } => {
                if !self.allowed(to.as_str(), Kind::ConfirmEmail).await? {
                    return Ok(());
                }
                let checked = Bound {
                    user,
                    email,
                    password: Some(password_hash),
                };
                // A taken address gets a notice instead of the link, but the user's older
                // links go all the same (a link no one holds takes their place): what the
                // user's own links do must not tell whether the address has an account.
                let taken = users.by_email(&to).await?.is_some();
                let kind = if taken {
                    Kind::AddressTaken
                } else {
                    Kind::ConfirmEmail
                };
                let sent = self
                    .issue(&checked, Purpose::Confirm, kind, to.as_str(), at)
                    .await?;
                self.unless_sent(sent, to.as_str()).await?;
            }
        }
        Ok(())
    }

    async fn reset_link(&self, email: &Email, kind: Kind, at: i64) -> Result<()> {
        if let Some(user) = self.stores.users.by_email(email).await?
            && self.allowed(&user.email, kind).await?
        {
            let bound = Bound::checked(&user);
            let sent = self
                .issue(&bound, Purpose::Reset, kind, &user.email, at)
                .await?;
            self.unless_sent(sent, &user.email).await?;
        }
        Ok(())
    }

    /// A request that `allowed` counted but that sent nothing (a link asked for later won,
    /// or the user changed) gives its place back.
    async fn unless_sent(&self, sent: bool, address: &str) -> Result<()> {
        if !sent {
            self.attempts.uncount_mail(address).await?;
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

    /// A verification link for `user` as read, asked for `at`.
    pub async fn welcome(&self, user: &User, at: i64) -> Result<bool> {
        let bound = Bound {
            user: user.id,
            email: user.email.clone(),
            password: None,
        };
        self.issue(&bound, Purpose::Verify, Kind::VerifyEmail, &user.email, at)
            .await
    }

    /// Issues a link of `purpose` for the user as `bound` says, asked for `at`, and queues
    /// a message of `kind` to `to`: the link's, or a notice that does not carry it (the
    /// link then only stands in for the older ones it replaces). Whether a message went.
    async fn issue(
        &self,
        bound: &Bound,
        purpose: Purpose,
        kind: Kind,
        to: &str,
        at: i64,
    ) -> Result<bool> {
        let (token, hash) = new_token().map_err(|_| AppError::internal("no randomness"))?;
        let ttl = match purpose {
            Purpose::Reset => self.reset_ttl,
            Purpose::Verify | Purpose::Confirm => self.verify_ttl,
        };
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let link = NewLink {
            hash,
            purpose,
            user: bound.user,
            address: to.to_owned(),
            bound_email: bound.email.clone(),
            bound_password: bound.password.clone(),
            expires_at: now_ms().saturating_add(ttl_ms),
            requested_at: at,
        };
        let sealed = if kind == Kind::AddressTaken {
            None
        } else {
            let sealed = self.seal.seal(&token, to);
            Some(sealed.ok_or_else(|| AppError::internal("the link could not be sealed"))?)
        };
        let mail = Outgoing {
            id: Uuid::new_v4(),
            kind: kind.as_str(),
            recipient: to.to_owned(),
            sealed,
        };
        let why = match self.stores.mail.issue(&link, &mail).await? {
            Issued::Done => {
                tracing::info!(kind = kind.as_str(), to = %mask(to), "mail queued");
                self.wake.notify_one();
                return Ok(true);
            }
            Issued::Stale => "the user changed meanwhile",
            Issued::Superseded => "a link asked for later exists",
        };
        tracing::info!(kind = kind.as_str(), to = %mask(to), "mail not queued: {why}");
        Ok(false)
    }

    /// Queues a notice with no link.
    pub async fn notice(&self, kind: Kind, to: &str) -> Result<()> {
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
