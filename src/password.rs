//! Customer password hashing on a fixed pool of threads.
//!
//! An argon2 hash (the default parameters: argon2id, 19 MiB, 2 passes) needs a 19 MiB
//! working buffer. Hashed on actix's blocking pool, every sign-up and login allocated its
//! own, on whichever of up to 512 blocking threads ran it, and the allocator kept them:
//! 20 sign-ups took the server from 20 MB to ~350 MB, 50 at once to 1.15 GB. Here a fixed
//! number of threads (`auth.hash_threads`, default one per core) each keep one buffer and
//! reuse it hash after hash; a thread idle for `auth.hash_memory_idle_s` gives its buffer
//! back. In front of the threads is a bounded queue (`auth.hash_queue` waiting jobs): when
//! it is full the caller is refused at once (503 with Retry-After, counted in
//! `dispatch_password_hashes_refused_total`) instead of queueing without bound.
//!
//! Hashes are the same PHC strings `argon2::PasswordHasher` writes, so hashes stored
//! before and after verify alike.

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use dispatch_actors::metric_names;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A stored hash asking for more memory than this (in 1 KiB blocks, 256 MiB) is refused
/// rather than grown into: every hash we write uses 19 MiB.
const MAX_BLOCKS: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every thread is busy and the queue is full: try again shortly.
    #[error("password hashing is at capacity")]
    Busy,
    /// The pool has stopped (shutdown) or a job panicked.
    #[error("password hashing stopped")]
    Stopped,
    /// The stored hash cannot be read, or argon2 refused its input.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// How the pool is sized.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Hashing threads; 0: one per available core.
    pub threads: usize,
    /// Jobs that may wait for a thread; more are refused.
    pub queue: usize,
    /// A thread idle this long frees its working buffer.
    pub idle_release: Duration,
    /// The parameters of new hashes (verification uses each stored hash's own).
    pub params: Params,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            queue: 32,
            idle_release: Duration::from_secs(5),
            params: Params::DEFAULT,
        }
    }
}

/// What a job hands back once it is counted out: it delivers the result to the caller.
type Deliver = Box<dyn FnOnce() + Send>;
/// A job gets its thread's reusable working memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) -> Deliver + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Accepted and not finished: waiting plus running.
    pending: usize,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// The hashing threads and their queue. Dropping it lets the threads finish what is
/// queued and exit.
pub struct PasswordPool {
    shared: Arc<Shared>,
    /// Most jobs accepted at once (threads + queue).
    limit: usize,
    threads: usize,
    params: Params,
}

impl PasswordPool {
    pub fn new(config: PoolConfig) -> Self {
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        for i in 0..threads {
            let shared = shared.clone();
            let idle = config.idle_release;
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || work(&shared, idle))
                .expect("a password hashing thread starts");
        }
        Self {
            shared,
            limit: threads + config.queue,
            threads,
            params: config.params,
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Jobs accepted and not finished (waiting plus running).
    pub fn pending(&self) -> usize {
        self.shared.queue.lock().pending
    }

    /// Runs `f` on a pool thread with that thread's working memory, or refuses at once
    /// when `threads + queue` jobs are already accepted.
    fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<R>, HashError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let result = f(memory);
            Box::new(move || {
                let _ = tx.send(result);
            })
        });
        let mut q = self.shared.queue.lock();
        if q.closed {
            return Err(HashError::Stopped);
        }
        if q.pending >= self.limit {
            drop(q);
            metrics::counter!(metric_names::PASSWORD_HASHES_REFUSED_TOTAL).increment(1);
            return Err(HashError::Busy);
        }
        q.pending += 1;
        q.jobs.push_back(job);
        metrics::gauge!(metric_names::PASSWORD_HASHES_PENDING).increment(1.0);
        drop(q);
        self.shared.ready.notify_one();
        Ok(rx)
    }

    /// A new PHC hash of `password` with a fresh salt. The job is queued (or refused)
    /// when this is called, not when the future is first polled.
    pub fn hash(&self, password: String) -> impl Future<Output = Result<String, HashError>> {
        let params = self.params.clone();
        let rx = self.submit(move |memory| hash_with(memory, &params, password.as_bytes()));
        async move { rx?.await.map_err(|_| HashError::Stopped)? }
    }

    /// Does `password` match the stored PHC hash `phc`? Queued (or refused) at once.
    pub fn verify(
        &self,
        password: String,
        phc: String,
    ) -> impl Future<Output = Result<bool, HashError>> {
        let rx = self.submit(move |memory| verify_with(memory, password.as_bytes(), &phc));
        async move { rx?.await.map_err(|_| HashError::Stopped)? }
    }
}

impl Drop for PasswordPool {
    fn drop(&mut self) {
        self.shared.queue.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

/// A pool thread: takes jobs until the pool closes; frees its buffer when idle.
fn work(shared: &Shared, idle_release: Duration) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let mut q = shared.queue.lock();
            loop {
                if let Some(job) = q.jobs.pop_front() {
                    break Some(job);
                }
                if q.closed {
                    break None;
                }
                if memory.is_empty() {
                    shared.ready.wait(&mut q);
                } else if shared.ready.wait_for(&mut q, idle_release).timed_out()
                    && q.jobs.is_empty()
                {
                    // Given back to the allocator, which returns a block this large to
                    // the system.
                    memory = Vec::new();
                }
            }
        };
        let Some(job) = job else { return };
        // A panic must not take the thread (and its share of the pool) with it; the
        // caller sees its reply dropped.
        let deliver = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
        // Counted out before the caller hears back, so a caller that got its answer
        // finds its place free.
        shared.queue.lock().pending -= 1;
        metrics::gauge!(metric_names::PASSWORD_HASHES_PENDING).decrement(1.0);
        if let Ok(deliver) = deliver {
            deliver();
        }
    }
}

/// The first `params.block_count()` blocks of `memory`, grown once if it is smaller.
fn blocks<'m>(memory: &'m mut Vec<Block>, params: &Params) -> Result<&'m mut [Block], HashError> {
    let need = params.block_count();
    if need > MAX_BLOCKS {
        return Err(HashError::Failed(format!(
            "a hash needing {need} KiB is over the limit"
        )));
    }
    if memory.len() < need {
        memory.resize(need, Block::new());
    }
    Ok(&mut memory[..need])
}

fn failed(e: impl std::fmt::Display) -> HashError {
    HashError::Failed(e.to_string())
}

/// What `Argon2::new(Argon2id, V0x13, params).hash_password(..)` writes, in `memory`.
pub fn hash_with(
    memory: &mut Vec<Block>,
    params: &Params,
    password: &[u8],
) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(failed)?;
    let out_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let ctx = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let blocks = blocks(memory, params)?;
    let output = Output::init_with(out_len, |out| {
        ctx.hash_password_into_with_memory(password, salt_bytes, out, &mut *blocks)
            .map_err(Into::into)
    })
    .map_err(failed)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.into(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored PHC string with the hash's own algorithm, version
/// and parameters (what `PasswordVerifier::verify_password` does), in `memory`.
pub fn verify_with(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(failed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(failed)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(failed)?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(failed)?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(HashError::Failed(
            "stored hash has no salt or output".into(),
        ));
    };
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(failed)?;
    let ctx = Argon2::new(algorithm, version, params.clone());
    let blocks = blocks(memory, &params)?;
    let computed = Output::init_with(expected.len(), |out| {
        ctx.hash_password_into_with_memory(password, salt_bytes, out, &mut *blocks)
            .map_err(Into::into)
    })
    .map_err(failed)?;
    // Output's equality is constant-time.
    Ok(computed == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn pool(threads: usize, queue: usize) -> PasswordPool {
        PasswordPool::new(PoolConfig {
            threads,
            queue,
            idle_release: Duration::from_secs(1),
            params: Params::DEFAULT,
        })
    }

    #[test]
    fn hashes_match_the_crate_s_own_both_ways() {
        let mut memory = Vec::new();
        // Ours verifies with the crate's verifier...
        let ours = hash_with(&mut memory, &Params::DEFAULT, b"correct horse").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
        // ...and a hash stored by the crate's hasher (what the server wrote before)
        // verifies with ours, in the same reused buffer.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            verify_with(&mut memory, b"battery staple", &theirs),
            Ok(true)
        );
        assert_eq!(verify_with(&mut memory, b"battery", &theirs), Ok(false));
        assert_eq!(memory.len(), Params::DEFAULT.block_count());
        // Other parameters (argon2i, smaller memory) verify too.
        let small = Params::new(1024, 1, 1, None).unwrap();
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x10, small)
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert_eq!(verify_with(&mut memory, b"pw", &other), Ok(true));
        assert!(matches!(
            verify_with(&mut memory, b"pw", "not a hash"),
            Err(HashError::Failed(_))
        ));
    }

    #[tokio::test]
    async fn the_pool_hashes_and_verifies() {
        let p = pool(2, 4);
        let h = p.hash("s3cret".into()).await.unwrap();
        assert!(p.verify("s3cret".into(), h.clone()).await.unwrap());
        assert!(!p.verify("s3cre".into(), h).await.unwrap());
        assert_eq!(p.pending(), 0);
    }

    /// A job that holds its thread until the test lets go.
    fn blocker(p: &PasswordPool) -> (std::sync::mpsc::Sender<()>, oneshot::Receiver<usize>) {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let rx = p
            .submit(move |memory| {
                let _ = wait.recv();
                memory.len()
            })
            .unwrap();
        (go, rx)
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_the_bound_holds() {
        let p = pool(1, 2);
        let (go, first) = blocker(&p);
        // One running, two waiting: the limit.
        let waiting: Vec<_> = (0..2).map(|i| p.hash(format!("pw{i}"))).collect();
        assert_eq!(p.pending(), 3);
        assert_eq!(p.hash("one too many".into()).await, Err(HashError::Busy));
        assert_eq!(p.verify("x".into(), "y".into()).await, Err(HashError::Busy));
        assert_eq!(p.pending(), 3);
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap(), 0, "no buffer before the first hash");
        for w in waiting {
            let h = w.await.unwrap();
            assert!(h.starts_with("$argon2id$"));
        }
        assert_eq!(p.pending(), 0);
        // Room again.
        assert!(p.hash("again".into()).await.is_ok());
    }

    #[tokio::test]
    async fn a_thread_reuses_its_buffer_and_frees_it_when_idle() {
        let p = pool(1, 4);
        p.hash("a".into()).await.unwrap();
        // The next job on the only thread finds the buffer the hash used.
        let (go, rx) = blocker(&p);
        go.send(()).unwrap();
        assert_eq!(rx.await.unwrap(), Params::DEFAULT.block_count());
        // Idle past idle_release (1 s): given back.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (go, rx) = blocker(&p);
        go.send(()).unwrap();
        assert_eq!(rx.await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_panicking_job_leaves_the_pool_working() {
        let p = pool(1, 1);
        let rx = p.submit(|_| -> usize { panic!("boom") }).unwrap();
        assert!(rx.await.is_err(), "the caller hears the job is gone");
        // The reply is dropped while unwinding, just before the job is counted out.
        for _ in 0..100 {
            if p.pending() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(p.pending(), 0);
        assert!(p.hash("still".into()).await.is_ok());
    }
}
