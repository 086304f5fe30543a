//! argon2id hashing on a few dedicated threads, so it never blocks the async workers and
//! is bounded: each hash needs a 19 MiB block of memory, and a flood of logins queues for
//! a thread instead of multiplying memory.
//!
//! Each thread allocates its block once and reuses it. Letting argon2 allocate one per hash
//! took the service from tens of MB to about 1 GB under a login flood: glibc keeps freed
//! blocks in per-thread arenas, and tokio's blocking threads come and go.
//! The threads run at a lower CPU priority: a flood of logins then takes only the CPU that
//! other requests leave, and `/api/users/me` keeps its latency while argon2 is saturated.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use prometheus::{Histogram, IntGauge};
use tokio::sync::{Semaphore, oneshot};
use tracing::Span;

use crate::error::{AppError, Result};

/// How long a hash may wait for its turn.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest costs a stored hash may ask for (64 MiB, 16 passes, 8 lanes): a hash is
/// ours, but a tampered row must not make one login allocate or compute without bound.
const MAX_BLOCKS: usize = 64 * 1024;
const MAX_PASSES: u32 = 16;
const MAX_LANES: u32 = 8;

/// How much lower than the workers the hashing threads run (a Unix nice value).
const NICENESS: i32 = 10;

/// Memory for one argon2 computation, grown to what its parameters ask and then kept.
pub type Memory = Vec<Block>;

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

#[derive(Clone)]
pub struct Passwords {
    /// One per thread: a job is sent only with a permit, so it never waits in the channel.
    permits: Arc<Semaphore>,
    jobs: SyncSender<Job>,
    /// Verified against when the email is unknown, so both failures cost the same time.
    dummy_hash: Arc<str>,
    queue: QueueMetrics,
}

/// What the queue in front of the threads looks like: hashes waiting, and how long each waited.
#[derive(Clone)]
pub struct QueueMetrics {
    pub depth: IntGauge,
    pub wait: Histogram,
}

impl Passwords {
    pub fn new(concurrency: usize, queue: QueueMetrics) -> Result<Self, String> {
        Self::with_dummy_password(concurrency, &uuid::Uuid::new_v4().to_string(), queue)
    }

    fn with_dummy_password(
        concurrency: usize,
        dummy: &str,
        queue: QueueMetrics,
    ) -> Result<Self, String> {
        let concurrency = concurrency.max(1);
        let dummy = hash_now(dummy, &mut Memory::new()).map_err(|e| format!("argon2: {e}"))?;
        let (jobs, received) = sync_channel::<Job>(concurrency);
        let received = Arc::new(Mutex::new(received));
        for i in 0..concurrency {
            let received = received.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hashing_thread(&received))
                .map_err(|e| format!("argon2: cannot start a hashing thread: {e}"))?;
        }
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(concurrency)),
            jobs,
            dummy_hash: dummy.into(),
            queue,
        })
    }

    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: String) -> Result<String> {
        self.blocking(move |memory| hash_now(&password, memory).map_err(AppError::internal))
            .await
    }

    /// Verifies against `hash`, or against the dummy hash when there is none. Always runs argon2.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let found = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .blocking(move |memory| Ok(verify_now(&password, &hash, memory)))
            .await?;
        Ok(found && matches)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // A queue this long means the machine cannot keep up: answer 503 rather than hang.
        let queued = std::time::Instant::now();
        self.queue.depth.inc();
        let permit =
            tokio::time::timeout(QUEUE_TIMEOUT, self.permits.clone().acquire_owned()).await;
        self.queue.depth.dec();
        self.queue.wait.observe(queued.elapsed().as_secs_f64());
        let permit = permit
            .map_err(|_| AppError::unavailable("argon2", "hashing queue is full"))?
            .map_err(AppError::internal)?;
        let span = Span::current();
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _permit = permit;
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| span.in_scope(|| work(memory))))
                    .unwrap_or_else(|_| Err(AppError::internal("argon2 panicked")));
            let _ = reply.send(result);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(AppError::internal("argon2 queue over its permits"));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(AppError::internal("argon2 threads are gone"));
            }
        }
        answer.await.map_err(AppError::internal)?
    }
}

/// Runs jobs until every `Passwords` handle is dropped.
fn hashing_thread(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    let mut memory = Memory::new();
    loop {
        // Only the receive is under the lock; a poisoned lock cannot hold a half-done job.
        let job = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        match job {
            Ok(job) => job(&mut memory),
            Err(_) => return,
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: setpriority has no memory effects; on Linux, `who = 0` with PRIO_PROCESS
    // names the calling thread only. Failure leaves the default priority, which is fine.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS) };
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {
    let _ = NICENESS;
}

/// `memory`'s first `params.block_count()` blocks, grown if need be; `None` for costs
/// over the caps.
fn blocks<'m>(memory: &'m mut Memory, params: &Params) -> Option<&'m mut [Block]> {
    let count = params.block_count();
    if count > MAX_BLOCKS || params.t_cost() > MAX_PASSES || params.p_cost() > MAX_LANES {
        return None;
    }
    if memory.len() < count {
        memory.resize(count, Block::new());
    }
    memory.get_mut(..count)
}

/// A new argon2id hash of `password` in PHC form, with OWASP's parameters (argon2's
/// defaults: m=19456 KiB, t=2, p=1) and a random 16-byte salt.
pub fn hash_now(password: &str, memory: &mut Memory) -> Result<String, argon2::Error> {
    let params = Params::default();
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| argon2::Error::OutOfMemory)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let blocks = blocks(memory, &params).ok_or(argon2::Error::MemoryTooMuch)?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|_| argon2::Error::OutOfMemory)?,
        salt: Some(Salt::new(&salt).map_err(|_| argon2::Error::SaltTooShort)?),
        hash: Some(Output::new(&out).map_err(|_| argon2::Error::OutputTooShort)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC `hash`, with the parameters the hash names. The
/// outputs are compared in constant time (`Output`'s equality).
pub fn verify_now(password: &str, hash: &str, memory: &mut Memory) -> bool {
    let Ok(phc) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(phc.algorithm.as_str()),
        Params::try_from(&phc),
        phc.salt,
        phc.hash,
    ) else {
        return false;
    };
    let version = match phc.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut out = vec![0u8; expected.len()];
    let Some(blocks) = blocks(memory, &params) else {
        return false;
    };
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt.as_ref(),
        &mut out,
        blocks,
    );
    // A hash with a larger memory cost than ours (an older configuration) leaves the block
    // at our size, so the threads' memory stays what the defaults ask.
    let ours = Params::default().block_count();
    if memory.len() > ours {
        memory.truncate(ours);
        memory.shrink_to_fit();
    }
    computed.is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detached() -> QueueMetrics {
        QueueMetrics {
            depth: IntGauge::new("depth", "depth").unwrap(),
            wait: Histogram::with_opts(prometheus::HistogramOpts::new("wait", "wait")).unwrap(),
        }
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let memory = &mut Memory::new();
        let hash = hash_now("correct horse", memory).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_now("correct horse", &hash, memory));
        assert!(!verify_now("correct horsE", &hash, memory));
        assert!(!verify_now("correct horse", "not a hash", memory));
        // Hashes made by argon2's own hasher (earlier versions) verify the same.
        use argon2::PasswordHasher;
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_now("correct horse", &theirs, memory));
        assert!(!verify_now("correct horsE", &theirs, memory));
        // And ours verify with argon2's own verifier.
        use argon2::PasswordVerifier;
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &PasswordHash::new(&hash).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn a_hash_asking_for_more_than_the_caps_fails_and_memory_returns_to_our_size() {
        let memory = &mut Memory::new();
        let hash = hash_now("pw", memory).unwrap();
        for greedy in [
            hash.replace("m=19456", "m=4194304"),
            hash.replace("t=2", "t=1000"),
            hash.replace("p=1", "p=64"),
        ] {
            assert!(!verify_now("pw", &greedy, memory), "{greedy}");
        }
        assert!(memory.len() <= Params::default().block_count());
        // A larger cost within the caps verifies, and the block returns to our size.
        let larger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32 * 1024, 2, 1, None).unwrap(),
        );
        use argon2::PasswordHasher;
        let theirs = larger.hash_password(b"pw").unwrap().to_string();
        assert!(verify_now("pw", &theirs, memory));
        assert_eq!(memory.len(), Params::default().block_count());
    }

    #[tokio::test]
    async fn an_unknown_user_fails_even_with_the_dummy_password() {
        let passwords =
            Passwords::with_dummy_password(1, "the dummy password", detached()).unwrap();
        assert!(
            !passwords
                .verify("the dummy password".into(), None)
                .await
                .unwrap()
        );
        let real = hash_now("the real password", &mut Memory::new()).unwrap();
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
        let queue = detached();
        let passwords = Passwords::with_dummy_password(2, "dummy", queue.clone()).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (passwords, running, most) = (passwords.clone(), running.clone(), most.clone());
            jobs.spawn(async move {
                passwords
                    .blocking(move |_| {
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
        // Every job went through the queue, and none is left in it.
        assert_eq!(queue.wait.get_sample_count(), 8);
        assert!(
            queue.wait.get_sample_sum() > 0.05,
            "six of eight jobs waited"
        );
        assert_eq!(queue.depth.get(), 0);
    }
}
