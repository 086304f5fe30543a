//! Mail: links that prove an address or recover an account, and notices of changes.
//!
//! A request only hands a job over (`Mailer::submit`) and answers. The worker (`jobs`) looks
//! the user up and writes the link's hash and its message into the outbox in one
//! transaction; the sender (`sender`) delivers the outbox. So a request answers alike, in
//! the same time, whoever the address belongs to; a slow or down SMTP server slows no
//! request; and queued mail survives a restart.

pub mod jobs;
pub mod link;
pub mod message;
pub mod sender;

use std::sync::Arc;

use lettre::message::Mailbox;
use prometheus::{IntCounterVec, IntGauge};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::config::MailSettings;
use crate::service::attempts::LoginAttempts;
use crate::store::Stores;

pub use jobs::Job;
pub use message::Kind;

/// Jobs waiting for the worker; past this, a job is dropped with a log line (the request
/// still answers as always: it promised nothing more).
const QUEUE: usize = 4096;

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
    jobs: mpsc::Sender<Job>,
    wake: Arc<Notify>,
    /// `REQUIRE_VERIFIED_EMAIL`.
    pub require_verified: bool,
    tasks: Vec<AbortHandle>,
}

impl Mailer {
    /// Starts the worker and the sender. Fails, naming the setting, on a bad `SMTP_URL`,
    /// `MAIL_FROM` or `MAIL_DIR`.
    pub fn start(settings: &MailSettings, parts: MailParts) -> Result<Self, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("MAIL_FROM: `{}` is not an address: {e}", settings.from))?;
        let transport = match &settings.smtp_url {
            Some(url) => sender::Transport::smtp(url)?,
            None => sender::Transport::files(settings.dir.clone())?,
        };
        let seal = Arc::new(link::Seal::new(&parts.seal_secret)?);
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
            sent: parts.sent,
            depth: parts.depth,
        };
        let tasks = vec![
            tokio::spawn(worker.run(queue)).abort_handle(),
            tokio::spawn(sender.run()).abort_handle(),
        ];
        Ok(Mailer {
            jobs,
            wake,
            require_verified: settings.require_verified,
            tasks,
        })
    }

    /// Hands `job` to the worker; never waits.
    pub fn submit(&self, job: Job) {
        if let Err(e) = self.jobs.try_send(job) {
            tracing::warn!(error = %e, "mail job dropped: the mail queue is full");
        }
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
