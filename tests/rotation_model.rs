//! A stateright model of one session's refresh-token rotation, explored exhaustively, whose
//! transitions call the shipped decision code: `rotation::decide` for what a presented token
//! leads to, and `rotation::newest` (polled by hand, one store read per step) for the chain an
//! in-grace replay follows. What the store does around them is modelled here.
//!
//! The world:
//! - three clients of one session (tabs or devices). All start with the login's pair (tabs
//!   reading it from shared storage: each later presentation of it is a sibling's token); each
//!   keeps the newest pair it has received, presents its refresh token (again: a retry), logs
//!   out with its pair, and drops its tokens when told 401. The clients are interchangeable,
//!   so the checker visits one state per renaming of them (`representative`, depth-first);
//! - "end this session" from the list of sessions (any client, or another session of the user);
//! - an attacker holding a copy of every refresh token ever issued, who may present any;
//! - a network that delivers, delays (any order), duplicates and loses responses: a lost
//!   response is one never delivered (a client never waits for one). A delayed request is the
//!   same as a later one, so requests reach the store when they are sent;
//! - the store as the Redis backend runs it, its finest-grained form: the `REFRESH` script is
//!   one atomic step (rotate a live entry of a live session, or return what it saw); then, as
//!   separate later steps of the same request, `decide` followed by the `RevokeForReuse` MULTI
//!   (one step) or the `FollowChain` GETs (one step each). An actix instance serves requests
//!   concurrently, so any in-flight request may take its next step at any time: this covers
//!   the two instances (and more); they share nothing but the store. With `Backend::Sqlite` a
//!   whole refresh is one step (one write transaction), and the script's rotation is decide's
//!   `Rotate`;
//! - time as ticks: a key lives while `now < its end`; the grace window, the access and the
//!   refresh lifetimes are `GRACE`, `ACCESS`, `REFRESH` ticks; a JWT past its `exp` is answered
//!   `token_expired` before the store is asked. Expired keys are dropped at each tick.
//!
//! Not modelled: users (no password change, so no stamp and no `UserChanged`), other sessions,
//! store outages (503), the reuse marker's own expiry (it outlives the horizon).
//!
//! A token is accepted when the store would let it through: an access token when its entry
//! and its session exist (`check`); a refresh token when `decide` on what the script would
//! see says `Rotate` or `FollowChain`. A refresh is accepted at its script step; the reads of
//! `FollowChain` then choose which tokens to hand out, each read taking the session with the
//! entry, so that no 200 leaves with the tokens of a session ended meanwhile
//! (`no_tokens_from_an_ended_session`: the model found that one, see docs/security.md).

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use rs256_auth::store::rotation::{self, RefreshState, Seen, Step, Successor};
use stateright::{Checker, HasDiscoveries, Model, Property};
use uuid::Uuid;

/// How long a rotated token's replay counts as another tab, in ticks. Two, so that a token
/// answered at one tick can be rotated by a sibling and presented at the next, inside the window.
const GRACE: u8 = 2;
const ACCESS: u8 = 3;
const REFRESH: u8 = 3;
const CLIENTS: usize = 3;

/// What bounds the state space.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The last tick.
    pub last_tick: u8,
    /// Refresh presentations by the clients, in all (retries included).
    pub presentations: u8,
    pub attacks: u8,
    pub duplicates: u8,
    /// Logouts and "end this session", in all.
    pub endings: u8,
}

const BOUNDS: Bounds = Bounds {
    last_tick: 3,
    presentations: 3,
    attacks: 1,
    duplicates: 1,
    endings: 1,
};

/// Changes to the store model or around `decide`, each of which a property must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    None,
    /// `decide` is told no replay is in the grace window.
    GraceIgnored,
    /// The script does not set the grace marker.
    GraceNotSet,
    /// The grace marker never expires.
    GraceNeverEnds,
    /// The previous access token keeps its lifetime instead of the grace window.
    OldAccessKept,
    /// `RevokeForReuse` does not set the reuse marker.
    ReuseMarkerNotSet,
    /// `RevokeForReuse` does not delete the session.
    RevokeKeepsSession,
    /// `FollowChain` answers the first successor, not the newest.
    FirstSuccessor,
    /// Logout and "end this session" delete token entries but not the session.
    EndKeepsSession,
    /// The script rotates a live entry whether or not its session exists.
    RotateWithoutSession,
    /// `FollowChain` reads each entry without its session (the store before this model).
    ChainIgnoresSession,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Redis,
    Sqlite,
}

/// A refresh entry: `Live`, or rotated into generation `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Entry {
    Live,
    Rotated(u8),
}

/// The store, one session's keys; each `u8` is the tick at which the key expires.
/// Generation `k` is the k-th pair: the login's is 0, and each rotation makes the next.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Store {
    session: Option<u8>,
    refresh: Vec<Option<(Entry, u8)>>,
    access: Vec<Option<u8>>,
    grace: Vec<Option<u8>>,
    /// The refresh token whose replay ended the session.
    reused: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Answer {
    Tokens(u8),
    Reused,
    Revoked,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Phase {
    /// `FollowChain`: `newest` from this generation, with the entries read so far.
    Follow(u8, Vec<Option<Entry>>),
    RevokeForReuse,
}

/// A refresh between its script and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Request {
    /// The client, or `None` for the attacker.
    from: Option<u8>,
    token: u8,
    innocent: bool,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Response {
    to: u8,
    answer: Answer,
    /// The tick at which the service decided it.
    at: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Client {
    /// The generation of the newest pair received, if any.
    held: Option<u8>,
    /// When the service answered with it (the latest such answer).
    received_at: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State {
    now: u8,
    store: Store,
    clients: [Client; CLIENTS],
    /// `rotated_at[k]`: when generation k was rotated into k + 1.
    rotated_at: Vec<u8>,
    requests: Vec<Request>,
    responses: Vec<Response>,
    presentations: u8,
    attacks: u8,
    duplicates: u8,
    endings: u8,
    // What happened, for the properties.
    /// A logout or "end this session" ran.
    ended_by_user: bool,
    /// The session was ended by something other than an innocent client: a logout, "end this
    /// session", or a replay that is not innocent.
    ended_elsewhere: bool,
    /// The last token whose replay (a rotated token outside the window, its session live)
    /// was answered `refresh_reused`.
    replayed: Option<u8>,
    /// An innocent presentation was answered `refresh_reused` or `session_revoked` while the
    /// session had not been ended elsewhere.
    false_logout: bool,
    /// Clients that received a new pair (a bit each).
    refreshed: u8,
    honest_late_reuse: bool,
    answered_in_grace: bool,
    in_grace_after_end: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Tick,
    Present(u8),
    Attack(u8),
    /// Run the next step of `requests[i]`.
    Step(usize),
    Deliver(usize),
    Duplicate(usize),
    Logout(u8),
    EndSession,
}

pub struct RotationModel {
    pub backend: Backend,
    pub mutation: Mutation,
    pub bounds: Bounds,
}

fn refresh_uuid(k: u8) -> Uuid {
    Uuid::from_u128(0x1_0000 + u128::from(k))
}

fn access_uuid(k: u8) -> Uuid {
    Uuid::from_u128(0x2_0000 + u128::from(k))
}

fn successor(k: u8) -> Successor {
    Successor {
        access: access_uuid(k),
        refresh: refresh_uuid(k),
        iat: i64::from(k),
    }
}

/// The generation a successor names; checks that it names a whole pair of ours.
fn generation(s: &Successor) -> u8 {
    let k = u8::try_from(s.refresh.as_u128() - 0x1_0000).unwrap();
    assert_eq!(*s, successor(k), "a successor the model did not write");
    k
}

fn state_of(k: u8, entry: Entry) -> RefreshState {
    match entry {
        Entry::Live => RefreshState::Live {
            access: access_uuid(k),
        },
        Entry::Rotated(n) => RefreshState::Rotated(successor(n)),
    }
}

fn alive(end: Option<u8>, now: u8) -> bool {
    end.is_some_and(|end| now < end)
}

/// Polls a future once with a waker that does nothing: `newest`'s lookups are immediate, or
/// pending for good when a step has done its one read.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

impl Store {
    fn entry(&self, k: u8, now: u8) -> Option<Entry> {
        self.refresh
            .get(usize::from(k))
            .copied()
            .flatten()
            .filter(|&(_, end)| now < end)
            .map(|(entry, _)| entry)
    }

    fn session_live(&self, now: u8) -> bool {
        alive(self.session, now)
    }

    /// What the script returns when it does not rotate.
    fn seen(&self, k: u8, now: u8) -> Seen {
        Seen {
            entry: self.entry(k, now).map(|e| state_of(k, e)),
            session: self.session_live(now),
            in_grace: alive(self.grace[usize::from(k)], now),
            reused: self.reused == Some(k),
        }
    }

    fn drop_expired(&mut self, now: u8) {
        let keep = |end: &mut Option<u8>| {
            if !alive(*end, now) {
                *end = None;
            }
        };
        keep(&mut self.session);
        self.access.iter_mut().for_each(keep);
        self.grace.iter_mut().for_each(keep);
        for entry in &mut self.refresh {
            if entry.is_some_and(|(_, end)| now >= end) {
                *entry = None;
            }
        }
    }
}

impl RotationModel {
    fn decide(&self, mut seen: Seen) -> Step {
        if self.mutation == Mutation::GraceIgnored {
            seen.in_grace = false;
        }
        rotation::decide(&seen)
    }

    fn born(state: &State, k: u8) -> u8 {
        if k == 0 {
            0
        } else {
            state.rotated_at[usize::from(k) - 1]
        }
    }

    /// Whether the store would let refresh token `k` through now.
    fn refresh_accepted(&self, state: &State, k: u8) -> bool {
        let now = state.now;
        if now >= Self::born(state, k) + REFRESH {
            return false;
        }
        let store = &state.store;
        let seen = store.seen(k, now);
        if self.backend == Backend::Redis && store.entry(k, now) == Some(Entry::Live) {
            // The script itself rotates a live entry of a live session.
            return seen.session || self.mutation == Mutation::RotateWithoutSession;
        }
        match self.decide(seen) {
            Step::Rotate { .. } => self.backend == Backend::Sqlite,
            Step::FollowChain(_) => true,
            Step::RevokeForReuse | Step::Answer(_) => false,
        }
    }

    fn access_accepted(&self, state: &State, k: u8) -> bool {
        let now = state.now;
        now < Self::born(state, k) + ACCESS
            && alive(state.store.access[usize::from(k)], now)
            && state.store.session_live(now)
    }

    fn accepted(&self, state: &State) -> (usize, usize) {
        let issued = state.rotated_at.len() + 1;
        let gens = 0..u8::try_from(issued).unwrap();
        let refresh = gens
            .clone()
            .filter(|&k| self.refresh_accepted(state, k))
            .count();
        let access = gens.filter(|&k| self.access_accepted(state, k)).count();
        (refresh, access)
    }

    fn nothing_accepted(&self, state: &State) -> bool {
        self.accepted(state) == (0, 0)
    }

    /// Rotates live generation `k` into a new one (the script's write, or SQLite's consume).
    fn rotate(&self, state: &mut State, k: u8) -> u8 {
        let now = state.now;
        let next = u8::try_from(state.rotated_at.len() + 1).unwrap();
        let store = &mut state.store;
        let i = usize::from(k);
        let end = store.refresh[i].map_or(now, |(_, end)| end);
        // KEEPTTL: the rotated entry lives as long as its token.
        store.refresh[i] = Some((Entry::Rotated(next), end));
        match self.mutation {
            Mutation::GraceNotSet => {}
            Mutation::GraceNeverEnds => store.grace[i] = Some(u8::MAX),
            _ => store.grace[i] = Some(now + GRACE),
        }
        if self.mutation != Mutation::OldAccessKept
            && let Some(end) = &mut store.access[i]
        {
            *end = (*end).min(now + GRACE);
        }
        store.access.push(Some(now + ACCESS));
        store.refresh.push(Some((Entry::Live, now + REFRESH)));
        store.grace.push(None);
        store.session = Some(now + REFRESH);
        state.rotated_at.push(now);
        next
    }

    /// One step of `newest` from `from`: the reads of earlier steps are replayed, then one read
    /// of the store now (every read, for SQLite). `Ok` is the answer, `Err` the entry read.
    fn follow(
        &self,
        state: &State,
        from: u8,
        log: &[Option<Entry>],
    ) -> Result<Option<u8>, Option<Entry>> {
        let (store, now) = (&state.store, state.now);
        if self.mutation == Mutation::FirstSuccessor {
            return Ok(store.session_live(now).then_some(from));
        }
        let reads = Cell::new(0);
        let fresh = Cell::new(None);
        let all = self.backend == Backend::Sqlite;
        let lookup = async |refresh: Uuid| {
            let k = u8::try_from(refresh.as_u128() - 0x1_0000).unwrap();
            let i = reads.get();
            reads.set(i + 1);
            let entry = if let Some(&entry) = log.get(i) {
                entry
            } else if i == log.len() || all {
                // Each read takes the session with the entry, in one command: a chain whose
                // session has ended is broken, and answers `Revoked`.
                let entry = store.entry(k, now).filter(|_| {
                    self.mutation == Mutation::ChainIgnoresSession || store.session_live(now)
                });
                fresh.set(Some(entry));
                entry
            } else {
                std::future::pending::<()>().await;
                unreachable!()
            };
            Ok(entry.map(|e| state_of(k, e)))
        };
        match poll_once(rotation::newest(successor(from), lookup)) {
            Poll::Ready(found) => Ok(found.unwrap().map(|s| generation(&s))),
            Poll::Pending => Err(fresh.get().unwrap()),
        }
    }

    /// Whether client `c` presenting its refresh token now is innocent: see
    /// `no_false_logout`.
    fn innocent(state: &State, c: u8, k: u8) -> bool {
        let now = state.now;
        let received = state.clients[usize::from(c)].received_at;
        let rotated = state.rotated_at.get(usize::from(k));
        rotated.is_none_or(|&at| now < at + GRACE) || now < received + GRACE
    }

    /// A refresh reaches the store: verify the JWT, then the script.
    fn present(&self, state: &mut State, from: Option<u8>, k: u8) {
        let now = state.now;
        let innocent = from.is_some_and(|c| Self::innocent(state, c, k));
        if now >= Self::born(state, k) + REFRESH {
            self.answer(state, from, k, innocent, Answer::Expired);
            return;
        }
        let seen = state.store.seen(k, now);
        let live = state.store.entry(k, now) == Some(Entry::Live);
        let redis = self.backend == Backend::Redis;
        // The script rotates a live entry of a live session itself.
        if redis && live && (seen.session || self.mutation == Mutation::RotateWithoutSession) {
            let next = self.rotate(state, k);
            self.answer(state, from, k, innocent, Answer::Tokens(next));
            return;
        }
        let phase = match self.decide(seen) {
            Step::Answer(answer) => {
                let answer = match answer {
                    rotation::Rotation::Reused => Answer::Reused,
                    rotation::Rotation::Revoked => Answer::Revoked,
                    other => panic!("decide answered {other:?}"),
                };
                self.answer(state, from, k, innocent, answer);
                return;
            }
            // As `redis/sessions.rs`: what the script declined is not rotatable.
            Step::Rotate { .. } if redis => {
                self.answer(state, from, k, innocent, Answer::Revoked);
                return;
            }
            Step::Rotate { old_access } => {
                assert_eq!(old_access, access_uuid(k));
                let next = self.rotate(state, k);
                self.answer(state, from, k, innocent, Answer::Tokens(next));
                return;
            }
            Step::FollowChain(s) => Phase::Follow(generation(&s), Vec::new()),
            Step::RevokeForReuse => Phase::RevokeForReuse,
        };
        let request = Request {
            from,
            token: k,
            innocent,
            phase,
        };
        if redis {
            state.requests.push(request);
            state.requests.sort();
        } else {
            self.step(state, request);
        }
    }

    /// The next step of a request past its script; `None` once it is answered.
    fn step(&self, state: &mut State, mut request: Request) -> Option<Request> {
        let (from, k, innocent) = (request.from, request.token, request.innocent);
        match &mut request.phase {
            Phase::RevokeForReuse => {
                if self.mutation != Mutation::RevokeKeepsSession {
                    state.store.session = None;
                }
                if self.mutation != Mutation::ReuseMarkerNotSet {
                    state.store.reused = Some(k);
                }
                if !innocent {
                    state.ended_elsewhere = true;
                }
                state.replayed = Some(k);
                self.answer(state, from, k, innocent, Answer::Reused);
                None
            }
            Phase::Follow(from_gen, log) => match self.follow(state, *from_gen, log) {
                Ok(found) => {
                    let answer = found.map_or(Answer::Revoked, Answer::Tokens);
                    if found.is_some() {
                        state.answered_in_grace = true;
                        if !state.store.session_live(state.now) {
                            state.in_grace_after_end = true;
                        }
                    }
                    self.answer(state, from, k, innocent, answer);
                    None
                }
                Err(read) => {
                    log.push(read);
                    Some(request)
                }
            },
        }
    }

    fn answer(&self, state: &mut State, from: Option<u8>, k: u8, innocent: bool, answer: Answer) {
        // `gone()`: a token past its `exp` is told so, whatever the store said.
        let answer = if answer == Answer::Revoked && state.now >= Self::born(state, k) + REFRESH {
            Answer::Expired
        } else {
            answer
        };
        let bad = matches!(answer, Answer::Reused | Answer::Revoked);
        if bad && innocent && !state.ended_elsewhere {
            state.false_logout = true;
        }
        if answer == Answer::Reused && !innocent && from.is_some() && state.attacks == 0 {
            state.honest_late_reuse = true;
        }
        if let Some(to) = from {
            state.responses.push(Response {
                to,
                answer,
                at: state.now,
            });
            state.responses.sort();
        }
    }

    /// Logout with client `c`'s pair: `end()` for each token that verifies.
    fn logout(&self, state: &mut State, c: u8) {
        let now = state.now;
        let Some(k) = state.clients[usize::from(c)].held else {
            return;
        };
        let born = Self::born(state, k);
        let access = now < born + ACCESS;
        let refresh = now < born + REFRESH;
        let store = &mut state.store;
        if self.mutation != Mutation::EndKeepsSession && (access || refresh) {
            store.session = None;
        }
        let i = usize::from(k);
        if access {
            store.access[i] = None;
        }
        if refresh {
            // The token's key is deleted by its uuid: an access and a refresh entry differ.
            store.refresh[i] = None;
            store.grace[i] = None;
        }
        if access || refresh {
            state.ended_by_user = true;
            state.ended_elsewhere = true;
        }
        state.clients[usize::from(c)].held = None;
    }
}

/// The clients are interchangeable: a state stands for every renaming of them, so the
/// checker visits one of each (sorted by what each client holds and awaits).
fn representative(state: &State) -> State {
    let key = |c: usize| {
        let to = |r: &&Response| usize::from(r.to) == c;
        let from = |r: &&Request| r.from.map(usize::from) == Some(c);
        (
            state.clients[c],
            state.refreshed >> c & 1,
            state
                .responses
                .iter()
                .filter(to)
                .map(|r| (r.answer, r.at))
                .collect::<Vec<_>>(),
            state
                .requests
                .iter()
                .filter(from)
                .map(|r| (r.token, r.innocent, r.phase.clone()))
                .collect::<Vec<_>>(),
        )
    };
    let mut order: Vec<usize> = (0..CLIENTS).collect();
    order.sort_by_cached_key(|&c| key(c));
    // `order[new] = old`; `rename[old] = new`.
    let mut rename = [0u8; CLIENTS];
    for (new, &old) in order.iter().enumerate() {
        rename[old] = u8::try_from(new).unwrap();
    }
    let mut out = state.clone();
    out.clients = std::array::from_fn(|new| state.clients[order[new]]);
    out.refreshed = (0..CLIENTS)
        .filter(|&old| state.refreshed >> old & 1 == 1)
        .fold(0, |bits, old| bits | 1 << rename[old]);
    for r in &mut out.responses {
        r.to = rename[usize::from(r.to)];
    }
    for r in &mut out.requests {
        r.from = r.from.map(|c| rename[usize::from(c)]);
    }
    out.responses.sort();
    out.requests.sort();
    out
}

impl Model for RotationModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let login = Client {
            held: Some(0),
            received_at: 0,
        };
        vec![State {
            now: 0,
            store: Store {
                session: Some(REFRESH),
                refresh: vec![Some((Entry::Live, REFRESH))],
                access: vec![Some(ACCESS)],
                grace: vec![None],
                reused: None,
            },
            clients: [login; CLIENTS],
            rotated_at: Vec::new(),
            requests: Vec::new(),
            responses: Vec::new(),
            presentations: 0,
            attacks: 0,
            duplicates: 0,
            endings: 0,
            ended_by_user: false,
            ended_elsewhere: false,
            replayed: None,
            false_logout: false,
            refreshed: 0,
            honest_late_reuse: false,
            answered_in_grace: false,
            in_grace_after_end: false,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.now < self.bounds.last_tick {
            actions.push(Action::Tick);
        }
        for c in 0..CLIENTS as u8 {
            let held = state.clients[usize::from(c)].held;
            if held.is_some() {
                if state.presentations < self.bounds.presentations {
                    actions.push(Action::Present(c));
                }
                if state.endings < self.bounds.endings {
                    actions.push(Action::Logout(c));
                }
            }
        }
        if state.attacks < self.bounds.attacks {
            for k in 0..=state.rotated_at.len() {
                actions.push(Action::Attack(u8::try_from(k).unwrap()));
            }
        }
        if state.endings < self.bounds.endings {
            actions.push(Action::EndSession);
        }
        actions.extend((0..state.requests.len()).map(Action::Step));
        for i in 0..state.responses.len() {
            // Equal responses are one choice.
            if i > 0 && state.responses[i] == state.responses[i - 1] {
                continue;
            }
            actions.push(Action::Deliver(i));
            if state.duplicates < self.bounds.duplicates {
                actions.push(Action::Duplicate(i));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Tick => {
                state.now += 1;
                let now = state.now;
                state.store.drop_expired(now);
            }
            Action::Present(c) => {
                state.presentations += 1;
                let k = state.clients[usize::from(c)].held?;
                self.present(&mut state, Some(c), k);
            }
            Action::Attack(k) => {
                state.attacks += 1;
                self.present(&mut state, None, k);
            }
            Action::Step(i) => {
                let request = state.requests.remove(i);
                if let Some(request) = self.step(&mut state, request) {
                    state.requests.push(request);
                    state.requests.sort();
                }
            }
            Action::Deliver(i) => {
                let response = state.responses.remove(i);
                let client = &mut state.clients[usize::from(response.to)];
                match response.answer {
                    Answer::Tokens(k) => {
                        if client.held.is_none_or(|held| k > held) {
                            client.held = Some(k);
                            client.received_at = response.at;
                        } else if client.held == Some(k) {
                            client.received_at = client.received_at.max(response.at);
                        }
                        state.refreshed |= 1 << response.to;
                    }
                    // A 401: the client goes back to its login page.
                    _ => client.held = None,
                }
            }
            Action::Duplicate(i) => {
                state.duplicates += 1;
                let copy = state.responses[i];
                state.responses.push(copy);
                state.responses.sort();
            }
            Action::Logout(c) => {
                state.endings += 1;
                self.logout(&mut state, c);
            }
            Action::EndSession => {
                state.endings += 1;
                if self.mutation != Mutation::EndKeepsSession {
                    state.store.session = None;
                }
                state.ended_by_user = true;
                state.ended_elsewhere = true;
            }
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            // A replay of a rotated token outside the grace window, reaching a live session,
            // has ended it by the time it is answered; no token of it is accepted after.
            Property::<Self>::always("replay_ends_the_session", |model, state| {
                state.replayed.is_none()
                    || (!state.store.session_live(state.now) && model.nothing_accepted(state))
            }),
            // The replayed token keeps answering `refresh_reused` (unless a logout deleted it).
            Property::<Self>::always(
                "the_replayed_token_keeps_answering_reuse",
                |model, state| {
                    let Some(k) = state.replayed else {
                        return true;
                    };
                    state.ended_by_user
                        || state.now >= RotationModel::born(state, k) + REFRESH
                        || model.decide(state.store.seen(k, state.now))
                            == Step::Answer(rotation::Rotation::Reused)
                },
            ),
            // No false logout. A client's presentation is innocent when it presents the
            // newest pair it received (or copied from a sibling) and either the token was not
            // rotated, or was rotated less than the grace window ago (a sibling's race, or a
            // retry of a lost response), or the service handed it out less than the grace
            // window ago. The assumption: a client retries a lost response, and uses an answer
            // (network delay included), within the grace window. An innocent presentation is
            // never answered `refresh_reused` or `session_revoked` unless the session was
            // ended by a logout, "end this session", or a presentation that is not innocent.
            Property::<Self>::always("no_false_logout", |_, state| !state.false_logout),
            // After the grace window of the last rotation, a live session accepts at most
            // one refresh token and one access token.
            Property::<Self>::always("one_token_after_the_grace_window", |model, state| {
                let after = state
                    .rotated_at
                    .last()
                    .is_none_or(|&at| state.now >= at + GRACE);
                let (refresh, access) = model.accepted(state);
                !after || (refresh <= 1 && access <= 1)
            }),
            // After a logout or "end this session", no token of the session is accepted.
            Property::<Self>::always("nothing_accepted_after_logout", |model, state| {
                !state.ended_by_user || model.nothing_accepted(state)
            }),
            // When nobody misbehaves, every client can refresh, up to the last tick.
            Property::<Self>::sometimes("every_client_refreshes_to_the_end", |model, state| {
                state.attacks == 0
                    && state.endings == 0
                    && state.refreshed == (1 << CLIENTS) - 1
                    && state.now == model.bounds.last_tick
                    && state.clients.iter().all(|c| {
                        c.held.is_some_and(|k| {
                            model.refresh_accepted(state, k) && model.access_accepted(state, k)
                        })
                    })
            }),
            Property::<Self>::sometimes("siblings_race_inside_the_window", |_, state| {
                state.answered_in_grace
            }),
            // Known, by design: a client that presents its pair after the window (its answer
            // lost and retried late, or a sibling rotated it) looks like a thief.
            Property::<Self>::sometimes(
                "known_an_honest_client_past_the_window_is_told_reuse",
                |_, state| state.honest_late_reuse,
            ),
            // The reads of an in-grace answer run after its script (Redis); a logout or a
            // reuse revocation in between must not let a 200 leave with dead tokens.
            Property::<Self>::always("no_tokens_from_an_ended_session", |_, state| {
                !state.in_grace_after_end
            }),
        ]
    }
}

const ALWAYS: [&str; 6] = [
    "replay_ends_the_session",
    "the_replayed_token_keeps_answering_reuse",
    "no_false_logout",
    "one_token_after_the_grace_window",
    "nothing_accepted_after_logout",
    "no_tokens_from_an_ended_session",
];

/// Explores every state, or, with `until`, stops at the first counterexample to that
/// property (a mutant may break several; stopping at any would make which one is found
/// depend on the threads' timing).
fn check(
    backend: Backend,
    mutation: Mutation,
    until: Option<&'static str>,
) -> impl Checker<RotationModel> {
    let started = Instant::now();
    let bounds = bounds();
    let model = RotationModel {
        backend,
        mutation,
        bounds,
    };
    let builder = model.checker().threads(2).symmetry_fn(representative);
    let checker = match until {
        None => builder.spawn_dfs().join(),
        Some(property) => builder
            .finish_when(HasDiscoveries::AnyOf([property].into_iter().collect()))
            .spawn_dfs()
            .join(),
    };
    println!(
        "{backend:?} {mutation:?} {bounds:?}: {} states explored, {} unique, depth {}, in {:.1?}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed()
    );
    checker
}

/// `MODEL_BOUNDS=tick,presentations,attacks,duplicates,endings` overrides `BOUNDS`.
fn bounds() -> Bounds {
    let Ok(text) = std::env::var("MODEL_BOUNDS") else {
        return BOUNDS;
    };
    let n: Vec<u8> = text.split(',').map(|n| n.parse().unwrap()).collect();
    Bounds {
        last_tick: n[0],
        presentations: n[1],
        attacks: n[2],
        duplicates: n[3],
        endings: n[4],
    }
}

/// A trace, one line per step: the action, then the state it led to. Under symmetry the
/// clients may be renamed from one state to the next: follow them by what they hold.
fn show(path: stateright::Path<State, Action>) -> String {
    let mut lines = Vec::new();
    for (state, action) in path.into_vec() {
        let clients: Vec<String> = state
            .clients
            .iter()
            .map(|c| match c.held {
                Some(k) => format!("r{k}@{}", c.received_at),
                None => "-".into(),
            })
            .collect();
        lines.push(format!(
            "  t={} session={:?} clients=[{}] rotated_at={:?} requests={:?} responses={:?}",
            state.now,
            state.store.session,
            clients.join(" "),
            state.rotated_at,
            state.requests,
            state.responses,
        ));
        if let Some(action) = action {
            lines.push(format!("{action:?}"));
        }
    }
    lines.join("\n")
}

#[test]
fn the_redis_protocol_keeps_every_property() {
    let checker = check(Backend::Redis, Mutation::None, None);
    for (name, path) in checker.discoveries() {
        println!("{name}:\n{}", show(path));
    }
    checker.assert_properties();
}

#[test]
fn the_sqlite_protocol_keeps_every_property() {
    let checker = check(Backend::Sqlite, Mutation::None, None);
    for name in ALWAYS {
        checker.assert_no_discovery(name);
    }
    checker.assert_any_discovery("every_client_refreshes_to_the_end");
    checker.assert_any_discovery("siblings_race_inside_the_window");
    checker.assert_any_discovery("known_an_honest_client_past_the_window_is_told_reuse");
}

#[test]
fn every_mutant_is_caught_by_its_property() {
    let mutants = [
        (Mutation::GraceIgnored, "no_false_logout"),
        (Mutation::GraceNotSet, "no_false_logout"),
        (Mutation::GraceNeverEnds, "one_token_after_the_grace_window"),
        (Mutation::OldAccessKept, "one_token_after_the_grace_window"),
        (
            Mutation::ReuseMarkerNotSet,
            "the_replayed_token_keeps_answering_reuse",
        ),
        (Mutation::RevokeKeepsSession, "replay_ends_the_session"),
        (Mutation::FirstSuccessor, "no_false_logout"),
        (Mutation::EndKeepsSession, "nothing_accepted_after_logout"),
        (
            Mutation::RotateWithoutSession,
            "nothing_accepted_after_logout",
        ),
        (
            Mutation::ChainIgnoresSession,
            "no_tokens_from_an_ended_session",
        ),
    ];
    for (mutation, property) in mutants {
        let checker = check(Backend::Redis, mutation, Some(property));
        let found = checker.discoveries();
        let caught: Vec<&str> = ALWAYS
            .into_iter()
            .filter(|p| found.contains_key(p))
            .collect();
        println!("{mutation:?} caught by {caught:?}");
        let path = checker.assert_any_discovery(property);
        println!("{}", show(path));
    }
}
