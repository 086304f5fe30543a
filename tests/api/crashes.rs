//! SIGKILL in a loop on the embedded store. The binary is killed at random moments while
//! clients register, log in and refresh; after each kill the file must pass
//! `PRAGMA integrity_check`, every register and login answered before the kill must still be
//! there, and no rotation may be half done: each acknowledged rotation is in the file, each
//! live session has exactly one unrotated refresh token, and the clients' chains go on across
//! the restarts.
//!
//! The seed is printed; `CRASH_SEED=<n>` replays the same choices (kill moments, what each
//! client does next). The interleaving of threads, and so what is in flight at each kill,
//! still varies from run to run.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::Response;
use tokio::task::JoinSet;

use crate::binary::Binary;
use crate::helpers::*;

mod file;
mod load;

use file::{check_file, snapshot};
use load::{Client, Counts, Issued, load};

const KILLS: usize = 20;
const CLIENTS: usize = 10;
/// Short, and waited out after each kill: every rotation made before a kill is then outside
/// it, so what a replay answers after the restart does not depend on timing.
const GRACE: Duration = Duration::from_secs(1);
/// How long the load runs before a kill: a random moment in this range (milliseconds).
const LOAD_MS: (u64, u64) = (100, 900);

fn seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .map(|s| s.parse().expect("CRASH_SEED is a number"))
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.expect("clock after 1970").as_nanos() as u64
        })
}

#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    load: Counts,
    registers_found: usize,
    sessions_found: usize,
    rotations_found: usize,
    open_registers: (usize, usize),
    open_logins: (usize, usize),
    open_refreshes: (usize, usize),
    lost_rotations_reused: usize,
    replays_reused: usize,
    newest_refreshed: usize,
}

/// Everything the run has been answered, and what the checks owe each client.
#[derive(Default)]
struct Ledger {
    registered: Vec<String>,
    /// Every session a client was answered, so that a committed in-flight login shows as
    /// one more.
    known_sids: HashSet<String>,
    /// Per user, the sessions of logins that committed without an answer.
    unanswered_sessions: HashMap<String, usize>,
    /// Clients whose in-flight refresh committed: their newest token was rotated.
    lost_rotation: HashSet<usize>,
    tally: Tally,
}

async fn refresh(base: &str, issued: &Issued) -> Response {
    refresh_at(base, &issued.token).await
}

/// After the restart, once the grace window of everything before the kill has passed.
/// A refresh in flight at the kill committed if and only if the file shows its token rotated
/// (`check_file`). If it did not, that token is still the client's newest and refreshes like
/// the others. If it did, the successor the client never received is the session's one
/// unrotated refresh token, and the client's token, now past the window, answers
/// `refresh_reused`: what a lost answer costs under this protocol, crash or not.
/// One client also replays its previous token (`refresh_reused`, after which its newest
/// answers `session_revoked`); every other newest token refreshes, and its chain goes on.
async fn check_answers(base: &str, clients: &mut [Client], ledger: &mut Ledger, rng: &mut Rng) {
    for index in ledger.lost_rotation.drain() {
        let chain = clients[index].chain.take().expect("a session");
        assert_error(refresh(base, chain.newest()).await, 401, "refresh_reused").await;
        ledger.tally.lost_rotations_reused += 1;
    }
    let start = rng.between(0, clients.len() as u64) as usize;
    let replayer = (0..clients.len())
        .map(|i| (start + i) % clients.len())
        .find(|&i| {
            clients[i]
                .chain
                .as_ref()
                .is_some_and(|c| c.refresh.len() > 1)
        });
    if let Some(index) = replayer {
        let chain = clients[index].chain.take().expect("a session");
        let previous = &chain.refresh[chain.refresh.len() - 2];
        assert_error(refresh(base, previous).await, 401, "refresh_reused").await;
        assert_error(refresh(base, chain.newest()).await, 401, "session_revoked").await;
        ledger.tally.replays_reused += 1;
    }
    let mut checks = JoinSet::new();
    for (index, client) in clients.iter_mut().enumerate() {
        let chains = client.parked.drain(..).map(|c| (false, c));
        for (current, chain) in chains
            .chain(client.chain.take().map(|c| (true, c)))
            .collect::<Vec<_>>()
        {
            let base = base.to_owned();
            checks.spawn(async move {
                let response = refresh(&base, chain.newest()).await;
                (index, current, chain, response)
            });
        }
    }
    while let Some(done) = checks.join_next().await {
        let (index, current, mut chain, response) = done.expect("check task");
        assert_eq!(
            response.status(),
            200,
            "the newest token of {} after a restart: {:?}",
            chain.sid,
            response.text().await
        );
        chain.refresh.push(Issued::from(&response));
        ledger.tally.newest_refreshed += 1;
        let client = &mut clients[index];
        if current {
            client.chain = Some(chain);
        } else {
            client.parked.push(chain);
        }
    }
}

#[tokio::test]
async fn sigkill_in_a_loop_under_load_loses_nothing_answered_and_no_rotation_is_half_done() {
    let seed = seed();
    println!("CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = TempDir::new();
    let file = dir.file("data/rs256-auth.db");
    let port = free_port();
    let grace = format!("{}s", GRACE.as_secs());
    let env = [("REFRESH_REUSE_GRACE", grace.as_str())];
    let mut clients: Vec<Client> = (0..CLIENTS).map(|id| Client::new(id, seed)).collect();
    let mut ledger = Ledger::default();
    let started = Instant::now();
    let mut killed_at = None;

    for cycle in 0..=KILLS {
        let binary = Binary::start_on(&dir, port, &env).await;
        if let Some(killed) = killed_at {
            tokio::time::sleep_until(killed + GRACE + Duration::from_millis(100)).await;
            check_answers(&binary.address, &mut clients, &mut ledger, &mut rng).await;
        }
        if cycle == KILLS {
            break;
        }
        let mut load_tasks = JoinSet::new();
        for client in clients.drain(..) {
            load_tasks.spawn(load(client, binary.address.clone()));
        }
        let load_for = rng.between(LOAD_MS.0, LOAD_MS.1);
        tokio::time::sleep(Duration::from_millis(load_for)).await;
        killed_at = Some(tokio::time::Instant::now());
        drop(binary); // SIGKILL
        ledger.tally.kills += 1;
        println!("kill {} after {load_for} ms of load", ledger.tally.kills);
        while let Some(done) = load_tasks.join_next().await {
            let client = done.expect("load task").unwrap_or_else(|e| panic!("{e}"));
            clients.push(client);
        }
        clients.sort_by_key(|c| c.id);
        let snapshot = snapshot(&file).await;
        check_file(&snapshot, &mut clients, &mut ledger);
    }

    for client in &clients {
        ledger.tally.load.registers += client.counts.registers;
        ledger.tally.load.logins += client.counts.logins;
        ledger.tally.load.refreshes += client.counts.refreshes;
    }
    let t = &ledger.tally;
    println!(
        "crash loop, seed {seed}: {} kills in {:.1}s. Answered during the load: {} registers, \
         {} logins, {} refreshes. In flight at a kill (committed/not): registers {:?}, \
         logins {:?}, refreshes {:?}. At the last check the file held all {} registered \
         users, the {} live answered sessions and their {} answered rotations. After the \
         restarts: {} newest tokens refreshed, {} committed unanswered rotations and {} \
         replays answered refresh_reused.",
        t.kills,
        started.elapsed().as_secs_f64(),
        t.load.registers,
        t.load.logins,
        t.load.refreshes,
        t.open_registers,
        t.open_logins,
        t.open_refreshes,
        t.registers_found,
        t.sessions_found,
        t.rotations_found,
        t.newest_refreshed,
        t.lost_rotations_reused,
        t.replays_reused,
    );
    assert_eq!(t.kills, KILLS);
    assert!(
        t.load.registers > 0 && t.load.logins > 0 && t.load.refreshes > 0 && t.replays_reused > 0,
        "the load did all three, and replays were checked: {t:?}"
    );
}
