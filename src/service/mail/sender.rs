//! The sender: takes due messages from the outbox and delivers them, over SMTP or as `.eml`
//! files. A message that fails is tried again with backoff (5 s, then doubling up to
//! 10 minutes) for a day, then dropped with one log line. Instances share the outbox; a
//! message is leased to one sender while it tries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use prometheus::{IntCounterVec, IntGauge};
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::service::mail::link::Seal;
use crate::service::mail::message::{self, Kind, mask};
use crate::store::Stores;
use crate::store::mail::{MailStore, Queued};

/// Messages taken per round.
const BATCH: i64 = 20;
/// How often the outbox is looked at with nothing to wake the sender: for retries that come
/// due and for mail another instance queued.
const POLL: Duration = Duration::from_secs(2);
/// Longer than one try can take (`SMTP_TIMEOUT` per command, a few commands).
const LEASE_MS: i64 = 120_000;
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

    /// `Err(true)` for a failure that trying again cannot fix (the server refused the
    /// recipient for good).
    async fn send(&self, mail: &Queued, message: Message) -> Result<(), (bool, String)> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(drop)
                .map_err(|e| (e.is_permanent(), e.to_string())),
            Transport::Files(dir) => {
                use tokio::io::AsyncWriteExt;
                let name = format!("{}-{}-{}.eml", now_ms(), mail.kind, mail.id);
                let mut file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(dir.join(name))
                    .await
                    .map_err(|e| (false, e.to_string()))?;
                file.write_all(&message.formatted())
                    .await
                    .map_err(|e| (false, e.to_string()))?;
                file.sync_all().await.map_err(|e| (false, e.to_string()))
            }
        }
    }
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
            let full = match self.round().await {
                Ok(full) => full,
                Err(e) => {
                    tracing::warn!(error = %e, "mail sender: the outbox cannot be read");
                    false
                }
            };
            if now_ms() - purged_at > PURGE_EVERY_MS {
                purged_at = now_ms();
                if let Err(e) = self.stores.mail.purge(purged_at).await {
                    tracing::warn!(error = %e, "mail sender: could not purge ended links");
                }
            }
            if !full {
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// Sends what is due; whether there may be more.
    async fn round(&self) -> Result<bool, crate::store::StoreError> {
        let now = now_ms();
        let due = self.stores.mail.claim(now, now + LEASE_MS, BATCH).await?;
        for mail in &due {
            self.deliver(mail).await;
        }
        self.depth.set(self.stores.mail.depth().await?);
        Ok(due.len() as i64 == BATCH)
    }

    async fn deliver(&self, mail: &Queued) {
        let to = mask(&mail.recipient);
        let kind = Kind::parse(&mail.kind);
        let label = kind.map_or("unknown", Kind::as_str);
        let token = match &mail.sealed {
            None => Ok(None),
            Some(sealed) => self
                .seal
                .open(sealed, &mail.recipient)
                .map(Some)
                // The refresh signing key changed since it was queued, or the row was altered.
                .ok_or_else(|| "its link cannot be opened with this instance's key".to_owned()),
        };
        let message = match (kind, token) {
            (Some(kind), Ok(token)) => message::build(
                kind,
                &self.from,
                &mail.recipient,
                token.as_deref(),
                &self.app_url,
            ),
            (None, _) => Err(format!("unknown kind `{}`", mail.kind)),
            (_, Err(e)) => Err(e),
        };
        let message = match message {
            Ok(message) => message,
            Err(reason) => return self.give_up(mail, label, &to, &reason).await,
        };
        match self.transport.send(mail, message).await {
            Ok(()) => {
                self.sent.with_label_values(&[label, "sent"]).inc();
                tracing::info!(kind = label, to = %to, attempt = mail.attempts, "mail sent");
                if let Err(e) = self.stores.mail.remove(mail.id).await {
                    // Its lease ends and it goes again: twice is better than never.
                    tracing::warn!(error = %e, kind = label, "mail sent but still in the outbox");
                }
            }
            Err((true, reason)) => self.give_up(mail, label, &to, &reason).await,
            Err((false, reason)) if now_ms() - mail.created_at >= GIVE_UP_MS => {
                self.give_up(
                    mail,
                    label,
                    &to,
                    &format!("still failing after a day: {reason}"),
                )
                .await;
            }
            Err((false, reason)) => {
                let wait = backoff_ms(mail.attempts);
                self.sent.with_label_values(&[label, "failed"]).inc();
                tracing::warn!(kind = label, to = %to, attempt = mail.attempts,
                    retry_in_secs = wait / 1000, error = %reason, "mail not sent; will retry");
                if let Err(e) = self.stores.mail.retry(mail.id, now_ms() + wait).await {
                    tracing::warn!(error = %e, kind = label, "mail retry not recorded");
                }
            }
        }
    }

    async fn give_up(&self, mail: &Queued, label: &str, to: &str, reason: &str) {
        self.sent.with_label_values(&[label, "dropped"]).inc();
        tracing::error!(kind = label, to = %to, attempt = mail.attempts, error = %reason,
            "mail dropped");
        if let Err(e) = self.stores.mail.remove(mail.id).await {
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
}
