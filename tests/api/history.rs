//! Seeded randomized histories on the real stores: many tasks drive two instances of the
//! service (`AuthService`, built as `startup.rs` builds it, each with its own caches) over the
//! same stores, every call is recorded with the instants it was invoked and answered, and
//! `helpers::history::check` proves the session properties on the history afterwards (that
//! module's doc says what each property is and how the checker skips ambiguous timings).
//!
//! The workload, with short lifetimes (grace 1 s, access tokens 2 s, refresh tokens and
//! sessions 5 s; `exp` is in whole seconds, so a token lives 1 to 2 s, or 4 to 5 s):
//! - a few users, each with a few session slots; a slot logs in (on either instance) and
//!   opens 1 to 3 tabs that share its cookie jar: a tab refreshes with the jar's token and puts
//!   the answer back only if the jar still holds the token it presented (as a browser that
//!   keeps the newest cookie), and authenticates with the jar's access token; now and then
//!   it sends two to four refreshes with the jar's token at once, on either instance (a
//!   browser restoring its tabs);
//! - now and then a tab acts as a thief or a careless client: it replays an old refresh token
//!   of its session, or one of any session, or an old access token; it logs out, ends one of
//!   its user's sessions (from the list), ends the others, changes the password, logs out
//!   everywhere; or it goes idle for 1 to 6 s, so tokens and sessions expire;
//! - once a refresh tells a tab its session is gone, the slot logs in again, until the run
//!   has made its number of calls.
//!
//! The checker proves nothing about a call it cannot place in time; the run prints how many
//! calls each property judged, and fails if it judged too few to mean anything.
//!
//! Each task's choices come from `HISTORY_SEED` (printed; random when unset), so a failing
//! seed replays the same choices; the interleaving, and so what the stores answer, is the
//! machine's. At least `HISTORY_CALLS` calls per store (10,000 when unset).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rs256_auth::clock::now_ms;
use rs256_auth::config::Settings;
use rs256_auth::domain::Email;
use rs256_auth::error::AppError;
use rs256_auth::metrics::Metrics;
use rs256_auth::service::accounts::{PasswordChange, Registered, Registration};
use rs256_auth::service::auth::AuthService;
use rs256_auth::service::sessions::{LoginStep, SessionTokens};
use rs256_auth::store::sessions::Device;
use uuid::Uuid;

use crate::helpers::cluster::RedisCluster;
use crate::helpers::history::{self, Answer, Event, Op, Token};
use crate::helpers::*;

const LIFETIMES: [(&str, &str); 3] = [
    ("REFRESH_REUSE_GRACE", "1s"),
    ("ACCESS_TOKEN_EXPIRED_IN", "2s"),
    ("REFRESH_TOKEN_EXPIRED_IN", "5s"),
];
const GRACE_MS: i64 = 1000;
/// Clock rounding and Redis TTLs: a timing closer than this to a boundary is not judged.
const MARGIN_MS: i64 = 25;
const CALLS: usize = 10_000;

fn calls() -> usize {
    std::env::var("HISTORY_CALLS").map_or(CALLS, |n| n.parse().expect("HISTORY_CALLS: a number"))
}
const USERS: u64 = 4;
const SLOTS_PER_USER: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_histories_keep_the_session_properties() {
    // The run's stores: the embedded file, or Postgres and Redis when they are set.
    run_history("the run's store", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and redis-cli (Debian's redis-server and redis-tools): run with --include-ignored"]
async fn seeded_histories_keep_the_session_properties_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let prefix = format!("history-{}:", Uuid::new_v4().simple());
    let urls = cluster.urls();
    run_history(
        "Redis Cluster",
        &[
            // Blank counts as unset: the users' store stays, sessions go to the cluster.
            ("REDIS_URL", ""),
            ("REDIS_CLUSTER_URLS", &urls),
            ("REDIS_KEY_PREFIX", &prefix),
        ],
    )
    .await;
}

fn seed() -> u64 {
    match std::env::var("HISTORY_SEED") {
        Ok(seed) => seed.parse().expect("HISTORY_SEED: a number"),
        Err(_) => Uuid::new_v4().as_u64_pair().0 >> 1,
    }
}

/// An instance as `startup.rs` builds it, minus the HTTP server.
async fn service(vars: &HashMap<String, String>) -> AuthService {
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let metrics = Metrics::new().unwrap();
    AuthService::from_settings(&settings, &metrics)
        .await
        .unwrap()
}

#[derive(Clone)]
struct User {
    id: Uuid,
    email: Email,
}

/// One session's cookie jar, shared by its tabs, and the tokens it held before.
struct Jar {
    access: String,
    refresh: String,
    old: Vec<(String, String)>,
}

struct Run {
    seed: u64,
    instances: [AuthService; 2],
    events: Mutex<Vec<Event>>,
    calls: AtomicUsize,
    target: usize,
    /// Old tokens of every session, for thieves: (access, refresh).
    stolen: Mutex<Vec<(String, String)>>,
}

fn code(e: &AppError) -> &'static str {
    e.code().as_str()
}

fn answer_of(tokens: &SessionTokens) -> Answer {
    Answer::Tokens {
        access: Token::of(&tokens.access),
        refresh: Token::of(&tokens.refresh),
    }
}

/// What a refresh answers when the session is gone for good, for this tab.
fn ends(code: &str) -> bool {
    matches!(
        code,
        "refresh_reused" | "session_revoked" | "token_expired" | "token_invalid"
    )
}

impl Run {
    fn done(&self) -> bool {
        self.calls.load(Ordering::Relaxed) >= self.target
    }

    fn record(&self, task: &str, at: usize, invoked: i64, op: Op, answer: Answer) {
        let answered = now_ms();
        let task = format!("{task}@{}", ["A", "B"][at]);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.events.lock().unwrap().push(Event {
            task,
            invoked,
            answered,
            op,
            answer,
        });
    }

    async fn login(&self, task: &str, at: usize, user: &User) -> Option<SessionTokens> {
        let device = Device {
            user_agent: "history".into(),
            ip: String::new(),
        };
        let invoked = now_ms();
        let result = self.instances[at]
            .sessions
            .login(&user.email, PASSWORD.into(), None, device)
            .await
            .and_then(|step| match step {
                LoginStep::Session(tokens) => Ok(tokens),
                LoginStep::CodeNeeded(_) => Err(AppError::internal("no user here has a factor")),
            });
        let answer = result
            .as_ref()
            .map_or_else(|e| Answer::Failed(code(e)), answer_of);
        self.record(task, at, invoked, Op::Login { user: user.id }, answer);
        result.ok()
    }

    async fn refresh(
        &self,
        task: &str,
        at: usize,
        token: &str,
    ) -> Result<SessionTokens, &'static str> {
        let op = Op::Refresh {
            token: Token::of(token),
        };
        let invoked = now_ms();
        let result = self.instances[at].sessions.refresh(token).await;
        let answer = result
            .as_ref()
            .map_or_else(|e| Answer::Failed(code(e)), answer_of);
        self.record(task, at, invoked, op, answer);
        result.map_err(|e| code(&e))
    }

    async fn authenticate(&self, task: &str, at: usize, token: &str) -> Option<Uuid> {
        let op = Op::Authenticate {
            token: Token::of(token),
        };
        let invoked = now_ms();
        let result = self.instances[at].sessions.authenticate(token).await;
        let answer = result
            .as_ref()
            .map_or_else(|e| Answer::Failed(code(e)), |_| Answer::Done);
        self.record(task, at, invoked, op, answer);
        result.ok().map(|(_, claims)| claims.sid)
    }

    /// Authenticates, then changes the password (to the same one: the hash, and so the
    /// user, changes all the same) keeping this session.
    async fn change_password(&self, task: &str, at: usize, access: &str) {
        let flows = &self.instances[at];
        let invoked = now_ms();
        let authenticated = flows.sessions.authenticate(access).await;
        let op = Op::Authenticate {
            token: Token::of(access),
        };
        let answer = authenticated
            .as_ref()
            .map_or_else(|e| Answer::Failed(code(e)), |_| Answer::Done);
        self.record(task, at, invoked, op, answer);
        let Ok((user, claims)) = authenticated else {
            return;
        };
        let change = PasswordChange {
            current: PASSWORD.into(),
            new: PASSWORD.into(),
            code: None,
            keep: claims.sid,
        };
        let invoked = now_ms();
        let result = flows.accounts.change_password(&user, change, None).await;
        let op = Op::PasswordChange {
            user: user.id,
            keep: claims.sid,
        };
        let answer = result.map_or_else(|e| Answer::Failed(code(&e)), |()| Answer::Done);
        self.record(task, at, invoked, op, answer);
    }

    async fn list(&self, task: &str, at: usize, user: Uuid) -> Vec<Uuid> {
        let invoked = now_ms();
        let result = self.instances[at].sessions.list(user).await;
        let sids: Vec<Uuid> = result
            .as_ref()
            .map(|list| list.iter().map(|s| s.sid).collect())
            .unwrap_or_default();
        let answer = result.map_or_else(
            |e| Answer::Failed(code(&e)),
            |_| Answer::Listed(sids.clone()),
        );
        self.record(task, at, invoked, Op::List { user }, answer);
        sids
    }

    /// Records a call, invoked at `invoked`, that answers nothing but success or an error.
    fn finished(&self, task: &str, at: usize, invoked: i64, op: Op, result: Result<(), AppError>) {
        let answer = result.map_or_else(|e| Answer::Failed(code(&e)), |()| Answer::Done);
        self.record(task, at, invoked, op, answer);
    }

    fn steal(&self, rng: &mut Rng, old: (String, String)) {
        let mut stolen = self.stolen.lock().unwrap();
        if stolen.len() < 256 {
            stolen.push(old);
        } else {
            let i = rng.below(256) as usize;
            stolen[i] = old;
        }
    }
}

async fn run_history(label: &str, extra: &[(&str, &str)]) {
    let seed = seed();
    eprintln!("history on {label}: HISTORY_SEED={seed}");
    let overrides: Vec<(&str, &str)> = LIFETIMES.iter().chain(extra).copied().collect();
    // The app owns the stores and removes them; its HTTP server stays idle.
    let app = spawn_app_on(TestStore::fresh().await, &overrides).await;
    let mut vars = base_settings();
    vars.extend(app.store.vars());
    for (k, v) in &overrides {
        vars.insert((*k).into(), (*v).into());
    }
    let instances = [service(&vars).await, service(&vars).await];
    let mut users = Vec::new();
    for _ in 0..USERS {
        let email = Email::normalize(&unique_email());
        let registration = Registration {
            name: "History".into(),
            email: email.clone(),
            password: PASSWORD.into(),
            photo: String::new(),
        };
        let Ok(Registered::Created(user)) = instances[0].accounts.register(registration).await
        else {
            panic!("registered");
        };
        users.push(User { id: user.id, email });
    }
    let run = Arc::new(Run {
        seed,
        instances,
        events: Mutex::new(Vec::new()),
        calls: AtomicUsize::new(0),
        target: calls(),
        stolen: Mutex::new(Vec::new()),
    });

    let started = Instant::now();
    // Tasks of this thread: a refresh's future is not `Send` (the stores' rotation holds an
    // async closure across an await), so the calls cannot go to `tokio::spawn`. The stores'
    // own work (connections, SQLite's threads, argon2's) still runs on the other threads.
    let tasks = tokio::task::LocalSet::new();
    tasks
        .run_until(async {
            let mut slots = Vec::new();
            for (u, user) in users.iter().enumerate() {
                for s in 0..SLOTS_PER_USER {
                    let task = slot(run.clone(), user.clone(), u as u64, s);
                    slots.push(tokio::task::spawn_local(task));
                }
            }
            for slot in slots {
                slot.await.unwrap();
            }
        })
        .await;
    let elapsed = started.elapsed();

    let events = std::mem::take(&mut *run.events.lock().unwrap());
    let verdict = history::check(&events, GRACE_MS, MARGIN_MS);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut latency: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for e in &events {
        *outcomes.entry(outcome(e)).or_default() += 1;
        let (sum, count) = latency.entry(kind(&e.op)).or_default();
        *sum += e.answered - e.invoked;
        *count += 1;
    }
    let latency: BTreeMap<&str, i64> = latency
        .into_iter()
        .map(|(op, (sum, count))| (op, sum / count))
        .collect();
    eprintln!(
        "history on {label}: HISTORY_SEED={seed}: {} calls in {:.1} s; judged: {} late replays, \
         {} innocent calls, {} tokens answered more than once, {} acceptances against {:?} \
         sessions surely ended; outcomes: {outcomes:?}; mean ms per call: {latency:?}",
        events.len(),
        elapsed.as_secs_f64(),
        verdict.late_replays,
        verdict.innocent,
        verdict.shared,
        verdict.accepted,
        verdict.ended,
    );
    assert!(
        verdict.violations.is_empty(),
        "HISTORY_SEED={seed} on {label}: {} violations:\n{}",
        verdict.violations.len(),
        history::explain(&events, &verdict.violations, 5)
    );
    // A history that judged nothing would prove nothing.
    assert!(
        events.len() >= run.target
            && verdict.late_replays > 0
            && verdict.innocent > run.target / 4
            && verdict.ended.len() >= 4,
        "HISTORY_SEED={seed} on {label}: the history exercised too little"
    );
}

fn outcome(e: &Event) -> String {
    let answer = match &e.answer {
        Answer::Failed(code) => code,
        _ => "ok",
    };
    format!("{} {answer}", kind(&e.op))
}

fn kind(op: &Op) -> &'static str {
    match op {
        Op::Login { .. } => "login",
        Op::Refresh { .. } => "refresh",
        Op::Authenticate { .. } => "authenticate",
        Op::Logout { .. } => "logout",
        Op::LogoutEverywhere { .. } => "logout_everywhere",
        Op::EndOne { .. } => "end_one",
        Op::EndOthers { .. } => "end_others",
        Op::PasswordChange { .. } => "password_change",
        Op::List { .. } => "list",
    }
}

/// One of a user's session slots: logs in, runs its tabs until the session is gone for
/// them, and logs in again, until the run has made its calls.
async fn slot(run: Arc<Run>, user: User, u: u64, s: u64) {
    let mut rng = Rng::of(run.seed, &[u, s]);
    let mut generation = 0;
    while !run.done() {
        generation += 1;
        let task = format!("u{u}s{s}g{generation}");
        let Some(tokens) = run.login(&task, rng.below(2) as usize, &user).await else {
            // A password change raced the login: try again.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let jar = Arc::new(Mutex::new(Jar {
            access: tokens.access,
            refresh: tokens.refresh,
            old: Vec::new(),
        }));
        let gone = Arc::new(AtomicBool::new(false));
        let mut tabs = Vec::new();
        for t in 0..1 + rng.below(3) {
            let rng = Rng::of(run.seed, &[u, s, generation, t]);
            let tab = Tab {
                run: run.clone(),
                user: user.id,
                task: format!("{task}t{t}"),
                jar: jar.clone(),
                gone: gone.clone(),
                rng,
            };
            tabs.push(tokio::task::spawn_local(tab.run()));
        }
        for tab in tabs {
            tab.await.unwrap();
        }
    }
}

struct Tab {
    run: Arc<Run>,
    user: Uuid,
    task: String,
    jar: Arc<Mutex<Jar>>,
    gone: Arc<AtomicBool>,
    rng: Rng,
}

impl Tab {
    async fn run(mut self) {
        let run = self.run.clone();
        while !run.done() && !self.gone.load(Ordering::Relaxed) {
            let pause = self.rng.below(30);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let at = self.rng.below(2) as usize;
            let (access, refresh) = {
                let jar = self.jar.lock().unwrap();
                (jar.access.clone(), jar.refresh.clone())
            };
            let task = self.task.as_str();
            match self.rng.below(10_000) {
                0..3800 => {
                    let result = run.refresh(task, at, &refresh).await;
                    self.take(&refresh, result);
                }
                3800..4000 => self.burst(&refresh).await,
                4000..4300 => {
                    // A thief, or a tab that kept an old cookie: an old token of this session.
                    // Half the time its oldest: surely a replay once the session is a second old.
                    let old = self.jar.lock().unwrap().old.clone();
                    let oldest = old.first().cloned().filter(|_| self.rng.below(2) == 0);
                    if let Some((_, refresh)) = oldest.or_else(|| self.rng.pick(&old)) {
                        let _ = run.refresh(task, at, &refresh).await;
                    }
                }
                4300..4400 => {
                    let stolen = run.stolen.lock().unwrap().clone();
                    if let Some((access, refresh)) = self.rng.pick(&stolen) {
                        if self.rng.below(2) == 0 {
                            let _ = run.refresh(task, at, &refresh).await;
                        } else {
                            run.authenticate(task, at, &access).await;
                        }
                    }
                }
                4400..4700 => {
                    run.list(task, at, self.user).await;
                }
                4700..4760 => {
                    let tokens = match self.rng.below(3) {
                        0 => vec![access],
                        1 => vec![refresh],
                        _ => vec![access, refresh],
                    };
                    let op = Op::Logout {
                        tokens: tokens.iter().map(|t| Token::of(t)).collect(),
                    };
                    let candidates: Vec<&str> = tokens.iter().map(String::as_str).collect();
                    let invoked = now_ms();
                    let result = run.instances[at].sessions.logout(&candidates).await;
                    run.finished(task, at, invoked, op, result);
                    self.gone.store(true, Ordering::Relaxed);
                }
                4760..4800 => {
                    let sids = run.list(task, at, self.user).await;
                    if let Some(sid) = self.rng.pick(&sids) {
                        let op = Op::EndOne {
                            user: self.user,
                            sid,
                        };
                        let invoked = now_ms();
                        let result = run.instances[at].sessions.end_one(self.user, sid).await;
                        run.finished(task, at, invoked, op, result);
                    }
                }
                4800..4805 => {
                    if let Some(keep) = run.authenticate(task, at, &access).await {
                        let op = Op::EndOthers {
                            user: self.user,
                            keep,
                        };
                        let invoked = now_ms();
                        let flows = &run.instances[at].sessions;
                        let result = flows.end_others(self.user, keep).await.map(|_| ());
                        run.finished(task, at, invoked, op, result);
                    }
                }
                4805..4810 => run.change_password(task, at, &access).await,
                4810..4815 => {
                    let op = Op::LogoutEverywhere {
                        token: Token::of(&access),
                    };
                    let invoked = now_ms();
                    let result = run.instances[at]
                        .sessions
                        .logout_everywhere(&[&access])
                        .await;
                    run.finished(task, at, invoked, op, result);
                }
                4815..4865 => {
                    // Idle: the tokens, and the session if every tab idles, may expire.
                    let until = Instant::now() + Duration::from_millis(1000 + self.rng.below(5000));
                    while Instant::now() < until && !run.done() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                _ => {
                    run.authenticate(task, at, &access).await;
                }
            }
        }
    }

    /// A refresh's answer: into the jar only if it still holds the token presented (another
    /// tab may have put a newer one there meanwhile), as a browser keeps the newest cookie.
    fn take(&mut self, presented: &str, result: Result<SessionTokens, &str>) {
        match result {
            Ok(tokens) => {
                let old = {
                    let mut jar = self.jar.lock().unwrap();
                    if jar.refresh != presented {
                        return;
                    }
                    let access = std::mem::replace(&mut jar.access, tokens.access);
                    let refresh = std::mem::replace(&mut jar.refresh, tokens.refresh);
                    jar.old.push((access.clone(), refresh.clone()));
                    (access, refresh)
                };
                self.run.steal(&mut self.rng, old);
            }
            Err(code) if ends(code) => self.gone.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
    }

    /// Two to four refreshes with the jar's token at once, on either instance (a browser
    /// restoring its tabs): one rotates, the others are inside the grace window.
    async fn burst(&mut self, refresh: &str) {
        let calls: Vec<_> = (0..2 + self.rng.below(3))
            .map(|_| {
                let (run, task) = (self.run.clone(), self.task.clone());
                let (token, at) = (refresh.to_owned(), self.rng.below(2) as usize);
                tokio::task::spawn_local(async move { run.refresh(&task, at, &token).await })
            })
            .collect();
        for call in calls {
            let result = call.await.unwrap();
            self.take(refresh, result);
        }
    }
}
