//! Mail: links that prove an address or recover an account, and notices of changes.
//!
//! A request only hands a job over (`Mailer::submit`) and answers. The worker (`jobs`) looks
//! the user up and writes the link's hash and its message into the outbox in one
//! transaction; the sender (`sender`) delivers the outbox. So a request answers alike, in
//! the same time, whoever the address belongs to; a slow or down SMTP server slows no
//! request; and queued mail survives a restart.

pub mod jobs;
pub mod message;
pub mod sender;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use lettre::message::Mailbox;
use prometheus::{IntCounterVec, IntGauge};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::clock::now_ms;
use crate::config::MailSettings;
use crate::domain::User;
use crate::error::Result;
use crate::service::attempts::LoginAttempts;
use crate::store::Stores;

use jobs::Asked;
pub use jobs::Job;
pub use message::Kind;

/// Jobs that anyone can ask for (forgot-password, resend, ...) waiting for the worker; past
/// this, such a job is dropped (the request still answers as always: it promised nothing
/// more). Register's first link and the notices are written by the request itself.
const QUEUE: usize = 4096;
/// Now, in Unix microseconds: when a job was asked for.
fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// At most one log line per this many milliseconds about dropped jobs.
const DROP_LOG_EVERY_MS: i64 = 10_000;

/// What the mail parts need from the rest of the service.
pub struct MailParts {
    pub stores: Arc<Stores>,
    /// For the per-address limit, on the login counters' store.
    pub attempts: LoginAttempts,
    /// The outbox key (`Tokens::derive_secret`).
    pub seal_secret: [u8; 32],
    /// `mail_sent_total`, `mail_outbox_depth`.
    pub sent: IntCounterVec,
    pub depth: IntGauge,
}

pub struct Mailer {
    jobs: mpsc::Sender<Asked>,
    worker: Arc<jobs::Worker>,
    sent: IntCounterVec,
    /// When a dropped job was last logged (Unix ms).
    drop_logged_at: AtomicI64,
    wake: Arc<Notify>,
    /// `REQUIRE_VERIFIED_EMAIL`.
    pub require_verified: bool,
    tasks: Vec<AbortHandle>,
}

impl Mailer {
    /// Starts the worker and the sender. Fails, naming the setting, on a bad `SMTP_URL`,
    /// `MAIL_FROM` or `MAIL_DIR`.
    pub fn start(settings: &MailSettings, parts: MailParts) -> std::result::Result<Self, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("MAIL_FROM: `{}` is not an address: {e}", settings.from))?;
        let transport = match &settings.smtp_url {
            Some(url) => sender::Transport::smtp(url)?,
            None => sender::Transport::files(settings.dir.clone())?,
        };
        let seal = Arc::new(crate::service::opaque::Seal::new(&parts.seal_secret)?);
        let wake = Arc::new(Notify::new());
        let (jobs, queue) = mpsc::channel(QUEUE);
        let worker = Arc::new(jobs::Worker {
            stores: parts.stores.clone(),
            attempts: parts.attempts,
            seal: seal.clone(),
            wake: wake.clone(),
            sent: parts.sent.clone(),
            reset_ttl: settings.reset_ttl,
            verify_ttl: settings.verify_ttl,
        });
        let sender = sender::Sender {
            stores: parts.stores,
            transport,
            from,
            app_url: settings.app_url.clone(),
            seal,
            wake: wake.clone(),
            sent: parts.sent.clone(),
            depth: parts.depth,
        };
        let tasks = vec![
            tokio::spawn(worker.clone().run(queue)).abort_handle(),
            tokio::spawn(sender.run()).abort_handle(),
        ];
        Ok(Mailer {
            jobs,
            worker,
            sent: parts.sent,
            drop_logged_at: AtomicI64::new(0),
            wake,
            require_verified: settings.require_verified,
            tasks,
        })
    }

    /// Hands `job` to the worker; never waits. When the worker is that far behind, the job
    /// is dropped: anyone may ask for these, again and again.
    pub fn submit(&self, job: Job) {
        let kind = job.kind();
        let job = Asked {
            job,
            at: now_micros(),
        };
        if self.jobs.try_send(job).is_err() {
            self.sent
                .with_label_values(&[kind.as_str(), "dropped"])
                .inc();
            let now = now_ms();
            let last = self.drop_logged_at.load(Ordering::Relaxed);
            if now - last >= DROP_LOG_EVERY_MS
                && self
                    .drop_logged_at
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    "mail requests dropped: the mail queue is full (mail_sent_total \
                     {{outcome=\"dropped\"}} counts them; this line comes at most every 10 s)"
                );
            }
        }
    }

    /// Writes a verification link for `user` and its mail into the outbox, now: register's
    /// first link is never dropped, and survives a crash once register has answered.
    pub async fn welcome(&self, user: &User) -> Result<()> {
        self.worker.welcome(user, now_micros()).await.map(drop)
    }

    /// Writes a notice into the outbox, now (it carries no link, so nothing to look up).
    pub async fn notice(&self, kind: Kind, to: &str) -> Result<()> {
        self.worker.notice(kind, to).await
    }

    /// Something was queued in the outbox outside the worker (a notice written with a
    /// change): send it now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Mailer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
