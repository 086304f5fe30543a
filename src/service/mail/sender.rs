//! The sender: takes due messages from the outbox and delivers them, over SMTP or as `.eml`
//! files. A message that fails is tried again with backoff (5 s, then doubling up to
//! 10 minutes) for a day, then dropped with one log line. Instances share the outbox: a
//! message is leased to one sender just before it is tried, for longer than a try can take,
//! and only the holder of the lease may delete or reschedule it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use prometheus::{IntCounterVec, IntGauge};
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::service::mail::message::{self, Kind, mask};
use crate::service::opaque::Seal;
use crate::store::Stores;
use crate::store::mail::{MailStore, Queued};

/// How often the outbox is looked at with nothing to wake the sender: for retries that come
/// due and for mail another instance queued.
const POLL: Duration = Duration::from_secs(2);
/// One try, whole: connecting, TLS, every command. Longer is cut short and counts as failed.
const SEND_DEADLINE: Duration = Duration::from_secs(60);
/// Twice a try's deadline: a lease never ends while its holder may still be sending.
const LEASE_MS: i64 = 120_000;
/// Each command's own bound, inside the deadline.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
const FIRST_RETRY_MS: i64 = 5_000;
const MAX_RETRY_MS: i64 = 600_000;
const GIVE_UP_MS: i64 = 24 * 3_600_000;
/// How often links past their end are deleted.
const PURGE_EVERY_MS: i64 = 600_000;

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in this folder (0700), one per message (0600).
    Files(PathBuf),
}

impl Transport {
    /// From `SMTP_URL`: `smtp://` tries STARTTLS when the server offers it (`?tls=required`
    /// insists, `?tls=none` never tries); `smtps://` is TLS from the first byte.
    pub fn smtp(url: &str) -> Result<Self, String> {
        let url = with_tls_default(url);
        if url.contains("tls=opportunistic") && has_credentials(&url) {
            tracing::warn!(
                "SMTP_URL has credentials but does not insist on TLS: they go in the clear to \
                 a server that offers no STARTTLS; add ?tls=required or use smtps://"
            );
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            // lettre's message names the part it could not read, never the password.
            .map_err(|e| format!("SMTP_URL: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Transport::Smtp(transport))
    }

    pub fn files(dir: PathBuf) -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("MAIL_DIR: cannot create `{}`: {e}", dir.display()))?;
        Ok(Transport::Files(dir))
    }

    fn name(&self) -> &'static str {
        match self {
            Transport::Smtp(_) => "smtp",
            Transport::Files(_) => "file",
        }
    }

    /// Delivers `message`; the error's text for the log.
    async fn send(&self, mail: &Queued, message: Message) -> Result<(), String> {
        let sent = tokio::time::timeout(SEND_DEADLINE, async {
            match self {
                Transport::Smtp(smtp) => smtp
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Transport::Files(dir) => write_file(dir, mail, &message.formatted())
                    .await
                    .map_err(|e| e.to_string()),
            }
        })
        .await;
        sent.unwrap_or_else(|_| Err(format!("no end within {}s", SEND_DEADLINE.as_secs())))
    }
}

/// Written under a temporary name and renamed: a reader never sees half a message, and a
/// failed write leaves nothing that looks like one.
async fn write_file(dir: &std::path::Path, mail: &Queued, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let name = format!("{}-{}-{}.eml", now_ms(), mail.kind, mail.id);
    let partial = dir.join(format!(".{name}.tmp"));
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    tokio::fs::rename(&partial, dir.join(name)).await
}

/// `?tls=opportunistic` unless the URL says otherwise; `?tls=none` becomes lettre's plain
/// `smtp://` (no `tls` parameter).
fn with_tls_default(url: &str) -> String {
    if !url.starts_with("smtp://") {
        return url.to_owned();
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if params.contains(&"tls=none") {
        let rest: Vec<&str> = params.into_iter().filter(|p| *p != "tls=none").collect();
        return if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
    }
    if params.iter().any(|p| p.starts_with("tls=")) {
        return url.to_owned();
    }
    let mut params = params;
    params.push("tls=opportunistic");
    format!("{base}?{}", params.join("&"))
}

/// Whether the URL has `user:pass@` before its host.
fn has_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority.contains('@')
}

/// How long after its `attempts`-th failed try a message is tried again.
pub(super) fn backoff_ms(attempts: i32) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    FIRST_RETRY_MS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_RETRY_MS)
}

pub struct Sender {
    pub stores: Arc<Stores>,
    pub transport: Transport,
    pub from: Mailbox,
    pub app_url: String,
    pub seal: Arc<Seal>,
    pub wake: Arc<Notify>,
    pub sent: IntCounterVec,
    pub depth: IntGauge,
}

impl Sender {
    pub async fn run(self) {
        tracing::info!(transport = self.transport.name(), "mail sender started");
        let mut purged_at = 0;
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "mail sender: the outbox cannot be read");
            }
            if now_ms() - purged_at > PURGE_EVERY_MS {
                purged_at = now_ms();
                if let Err(e) = self.stores.mail.purge(purged_at).await {
                    tracing::warn!(error = %e, "mail sender: could not purge ended links");
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Sends what is due, one message at a time, each leased just before its try. A failed
    /// try ends the round: a server that is down is asked once per round, not once per
    /// message.
    async fn round(&self) -> Result<(), crate::store::StoreError> {
        loop {
            let now = now_ms();
            let Some(mail) = self.stores.mail.claim(now, now + LEASE_MS, 1).await?.pop() else {
                break;
            };
            if !self.deliver(&mail).await {
                break;
            }
        }
        self.depth.set(self.stores.mail.depth().await?);
        Ok(())
    }

    /// Tries `mail` once; whether it went.
    async fn deliver(&self, mail: &Queued) -> bool {
        let to = mask(&mail.recipient);
        let kind = Kind::parse(&mail.kind);
        let label = kind.map_or("unknown", Kind::as_str);
        let token = match &mail.sealed {
            None => Some(None),
            Some(sealed) => self.seal.open(sealed, &mail.recipient).map(Some),
        };
        let Some(token) = token else {
            // Sealed with another key: an instance that still has the old refresh key (a
            // rolling change) can send it; past a day it goes.
            self.failed(mail, label, &to, "its link was sealed with another key")
                .await;
            return true;
        };
        let message = match kind {
            Some(kind) => message::build(
                kind,
                mail.id,
                &self.from,
                &mail.recipient,
                token.as_deref(),
                &self.app_url,
            ),
            None => Err(format!("unknown kind `{}`", mail.kind)),
        };
        let message = match message {
            Ok(message) => message,
            Err(reason) => {
                self.give_up(mail, label, &to, &reason).await;
                return true;
            }
        };
        match self.transport.send(mail, message).await {
            Ok(()) => {
                self.sent.with_label_values(&[label, "sent"]).inc();
                tracing::info!(kind = label, to = %to, attempt = mail.attempts, "mail sent");
                match self.stores.mail.remove(mail).await {
                    Ok(true) => {}
                    // Its lease ran out and another sender has it: twice is better than never.
                    Ok(false) => tracing::warn!(kind = label, "mail sent after its lease ended"),
                    Err(e) => {
                        tracing::warn!(error = %e, kind = label, "mail sent but still in the outbox");
                    }
                }
                true
            }
            Err(reason) => {
                // The server's reply may quote the address.
                let reason = reason.replace(&mail.recipient, &to);
                self.failed(mail, label, &to, &reason).await;
                false
            }
        }
    }

    /// A failed try: again later, with backoff, until a day has passed.
    async fn failed(&self, mail: &Queued, label: &str, to: &str, reason: &str) {
        if now_ms() - mail.created_at >= GIVE_UP_MS {
            let reason = format!("still failing after a day: {reason}");
            return self.give_up(mail, label, to, &reason).await;
        }
        let wait = backoff_ms(mail.attempts);
        self.sent.with_label_values(&[label, "failed"]).inc();
        tracing::warn!(kind = label, to = %to, attempt = mail.attempts,
            retry_in_secs = wait / 1000, error = %reason, "mail not sent; will retry");
        if let Err(e) = self.stores.mail.retry(mail, now_ms() + wait).await {
            tracing::warn!(error = %e, kind = label, "mail retry not recorded");
        }
    }

    async fn give_up(&self, mail: &Queued, label: &str, to: &str, reason: &str) {
        self.sent.with_label_values(&[label, "dropped"]).inc();
        tracing::error!(kind = label, to = %to, attempt = mail.attempts, error = %reason,
            "mail dropped");
        if let Err(e) = self.stores.mail.remove(mail).await {
            tracing::warn!(error = %e, kind = label, "dropped mail still in the outbox");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_30_seconds_and_end_10_minutes_apart() {
        assert_eq!(backoff_ms(1), 5_000);
        assert_eq!(backoff_ms(2), 10_000);
        assert_eq!(backoff_ms(3), 20_000);
        assert_eq!(backoff_ms(8), 600_000);
        assert_eq!(backoff_ms(1000), 600_000);
        assert_eq!(backoff_ms(0), 5_000);
    }

    #[test]
    fn smtp_urls_try_starttls_unless_told() {
        assert_eq!(
            with_tls_default("smtp://u:p@mail:1025"),
            "smtp://u:p@mail:1025?tls=opportunistic"
        );
        assert_eq!(
            with_tls_default("smtp://mail:587?tls=required"),
            "smtp://mail:587?tls=required"
        );
        assert_eq!(
            with_tls_default("smtp://mail:25?tls=none"),
            "smtp://mail:25"
        );
        assert_eq!(with_tls_default("smtps://mail"), "smtps://mail");
    }

    #[test]
    fn credentials_are_found_before_the_host_only() {
        assert!(has_credentials("smtp://u:p@mail:587?tls=opportunistic"));
        assert!(!has_credentials("smtp://mail:587?to=a@b"));
        assert!(!has_credentials("smtp://mail:1025"));
    }
}
