//! argon2id hashing, off the async workers and bounded: each hash holds ~19 MiB, so a flood
//! of logins queues for a permit instead of multiplying memory or starving other requests.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;
use tracing::Span;

use crate::error::{AppError, Result};

/// How long a hash may wait for its turn.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so both failures cost the same time.
    dummy_hash: Arc<str>,
}

impl Passwords {
    pub fn new(concurrency: usize) -> Result<Self, String> {
        Self::with_dummy_password(concurrency, &uuid::Uuid::new_v4().to_string())
    }

    fn with_dummy_password(concurrency: usize, dummy: &str) -> Result<Self, String> {
        let dummy = hash_now(dummy).map_err(|e| format!("argon2: {e}"))?;
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: dummy.into(),
        })
    }

    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: String) -> Result<String> {
        self.blocking(move || hash_now(&password).map_err(AppError::internal))
            .await
    }

    /// Verifies against `hash`, or against the dummy hash when there is none. Always runs argon2.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let found = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .blocking(move || Ok(verify_now(&password, &hash)))
            .await?;
        Ok(found && matches)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // A queue this long means the machine cannot keep up: answer 503 rather than hang.
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| AppError::unavailable("argon2", "hashing queue is full"))?
            .map_err(AppError::internal)?;
        let span = Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(work)
        })
        .await
        .map_err(AppError::internal)?
    }
}

fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    // Argon2::default() is argon2id, m=19456 KiB, t=2, p=1: OWASP's recommendation.
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

fn verify_now(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hash = hash_now("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_now("correct horse", &hash));
        assert!(!verify_now("correct horsE", &hash));
        assert!(!verify_now("correct horse", "not a hash"));
    }

    #[tokio::test]
    async fn an_unknown_user_fails_even_with_the_dummy_password() {
        let passwords = Passwords::with_dummy_password(1, "the dummy password").unwrap();
        assert!(
            !passwords
                .verify("the dummy password".into(), None)
                .await
                .unwrap()
        );
        let real = hash_now("the real password").unwrap();
        assert!(
            passwords
                .verify("the real password".into(), Some(real))
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_hashes_run_at_once_than_permitted() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let passwords = Passwords::with_dummy_password(2, "dummy").unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (passwords, running, most) = (passwords.clone(), running.clone(), most.clone());
            jobs.spawn(async move {
                passwords
                    .blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            });
        }
        for result in jobs.join_all().await {
            result.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
