//! A history of calls to the real service, and a checker of the session properties on it
//! (docs/security.md): `check(&events, grace_ms, margin_ms)` returns what it judged and every
//! violation it can prove; `explain` prints a violation with the events of its session.
//!
//! Each `Event` is one call: who made it, the instants it was invoked and answered (Unix ms,
//! the clock the service and its stores use), what it asked and what came back. Real time is
//! continuous and a call takes effect at some unknown instant between its two instants, so
//! the checker only flags what holds for every such instant, `margin_ms` included (clock
//! rounding, Redis TTLs): an ambiguous case is skipped, never guessed. The rules:
//!
//! - A refresh token `x` is rotated at the latest when the first call presenting it is
//!   answered with tokens, and at the earliest when some call presenting it was invoked. A
//!   presentation of `x` is *fresh* (surely before its rotation, or inside its grace window)
//!   when every other presentation of `x` invoked before it was answered was invoked less than
//!   `grace - margin` before that answer; it is *late* (surely outside the window) when it
//!   was invoked more than `grace + margin` after the first answer with tokens for `x`. An
//!   access token is fresh as the refresh token issued with it is: rotation trims it to the
//!   grace window.
//! - A session *may have ended* from the invocation of a logout with one of its tokens, an
//!   "end this session" of it, an "end the others", a password change or a logout everywhere
//!   of its user (unless its login began after the call was answered), or a presentation of
//!   one of its refresh tokens that is not fresh (a possible replay).
//! - A session *has ended* from the answer of: a logout with one of its tokens, not expired;
//!   an "end this session" of it (`not_found` included); an "end the others" or a password
//!   change of its user that another session asked for, its login answered before the call;
//!   a logout everywhere with a token fresh and of a session that may not have ended by
//!   another call (its user's sessions logged in before the call); a refresh answered
//!   `refresh_reused`; a late replay answered `session_revoked`.
//!
//! Properties (numbers as in the issue):
//! 1. a late replay, unexpired, is answered `refresh_reused` or `session_revoked`; and once
//!    it is, no token of its session is accepted by a call invoked after (4 below reports it);
//! 2. a fresh presentation (refresh, or an access token), unexpired, of a session that may not
//!    have ended is never answered `refresh_reused` or `session_revoked`;
//! 3. the refresh tokens answered for one presented token lie on one chain (no fork: two
//!    tokens that could each be refreshed on their own); with 1 (no late replay accepted),
//!    only the newest token of a chain is accepted once the grace window has passed;
//! 4. after a session has ended, no call invoked after that accepts its access or refresh
//!    tokens or lists it;
//! 5. such a fresh presentation as in 2 is answered with tokens (refresh) or the user
//!    (authenticate): every innocent call of a live, unexpired session succeeds;
//!
//! and 0: no call is answered `internal_error`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use uuid::Uuid;

use super::claims_of;

/// A token as its claims name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub uuid: Uuid,
    pub sid: Uuid,
    pub user: Uuid,
    /// `exp` in Unix ms: from then on it does not verify.
    pub exp_ms: i64,
}

impl Token {
    /// Reads the claims of a compact JWS, unverified.
    pub fn of(jwt: &str) -> Token {
        let claims = claims_of(jwt);
        let uuid = |name: &str| -> Uuid {
            claims[name]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("claim {name} in {claims}"))
        };
        Token {
            uuid: uuid("token_uuid"),
            sid: uuid("sid"),
            user: uuid("sub"),
            exp_ms: claims["exp"].as_i64().expect("exp") * 1000,
        }
    }
}

/// What a call asked.
#[derive(Debug, Clone)]
pub enum Op {
    Login { user: Uuid },
    Refresh { token: Token },
    Authenticate { token: Token },
    Logout { tokens: Vec<Token> },
    LogoutEverywhere { token: Token },
    EndOne { user: Uuid, sid: Uuid },
    EndOthers { user: Uuid, keep: Uuid },
    PasswordChange { user: Uuid, keep: Uuid },
    List { user: Uuid },
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A login's or a refresh's new pair.
    Tokens {
        access: Token,
        refresh: Token,
    },
    /// Success without tokens (authenticate, logout, end, password change).
    Done,
    Listed(Vec<Uuid>),
    /// The error's code as the API sends it (`refresh_reused`, `session_revoked`, ...).
    Failed(&'static str),
}

#[derive(Debug, Clone)]
pub struct Event {
    /// Which task made it, and on which instance: for the trace only.
    pub task: String,
    pub invoked: i64,
    pub answered: i64,
    pub op: Op,
    pub answer: Answer,
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub property: u8,
    pub event: usize,
    pub sid: Option<Uuid>,
    pub why: String,
}

/// What the checker looked at (so that a run can show its checks were not vacuous), and
/// what it found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Late replays (property 1).
    pub late_replays: usize,
    /// Fresh presentations of sessions that may not have ended (properties 2 and 5).
    pub innocent: usize,
    /// Presented tokens answered with tokens more than once (property 3).
    pub shared: usize,
    /// Sessions surely ended, by the kind of call that ended them (a session ended by
    /// several calls counts for each), and the acceptances checked against them (1 and 4).
    pub ended: HashMap<&'static str, usize>,
    pub accepted: usize,
    pub violations: Vec<Violation>,
}

const REUSED: &str = "refresh_reused";
const REVOKED: &str = "session_revoked";

struct Index<'a> {
    events: &'a [Event],
    grace: i64,
    margin: i64,
    /// Each session's login: (invoked, answered).
    logins: HashMap<Uuid, (i64, i64)>,
    sessions: HashMap<Uuid, Vec<Uuid>>,
    /// Each refresh token's presentations.
    presented: HashMap<Uuid, Vec<usize>>,
    /// When each refresh token was first answered with tokens.
    first_ok: HashMap<Uuid, i64>,
    /// The refresh token issued with each access token.
    pair: HashMap<Uuid, Uuid>,
    /// Per session: (invoked, event) of each call that may have ended it.
    may_end: HashMap<Uuid, Vec<(i64, usize)>>,
}

impl<'a> Index<'a> {
    fn new(events: &'a [Event], grace: i64, margin: i64) -> Self {
        let mut index = Index {
            events,
            grace,
            margin,
            logins: HashMap::new(),
            sessions: HashMap::new(),
            presented: HashMap::new(),
            first_ok: HashMap::new(),
            pair: HashMap::new(),
            may_end: HashMap::new(),
        };
        for (i, e) in events.iter().enumerate() {
            if let Answer::Tokens { access, refresh } = &e.answer {
                index.pair.insert(access.uuid, refresh.uuid);
                if let Op::Login { user } = e.op {
                    index.logins.insert(refresh.sid, (e.invoked, e.answered));
                    index.sessions.entry(user).or_default().push(refresh.sid);
                }
            }
            if let Op::Refresh { token } = e.op {
                index.presented.entry(token.uuid).or_default().push(i);
                if matches!(e.answer, Answer::Tokens { .. }) {
                    let first = index.first_ok.entry(token.uuid).or_insert(e.answered);
                    *first = (*first).min(e.answered);
                }
            }
        }
        for (i, e) in events.iter().enumerate() {
            for sid in index.sessions_it_may_end(i) {
                index.may_end.entry(sid).or_default().push((e.invoked, i));
            }
        }
        index
    }

    /// The user's sessions whose login began before `before`, but `keep`.
    fn sessions_of(&self, user: Uuid, keep: Option<Uuid>, before: i64) -> Vec<Uuid> {
        let all = self.sessions.get(&user).map(Vec::as_slice).unwrap_or(&[]);
        all.iter()
            .copied()
            .filter(|sid| Some(*sid) != keep && self.logins[sid].0 < before + self.margin)
            .collect()
    }

    fn sessions_it_may_end(&self, i: usize) -> Vec<Uuid> {
        let e = &self.events[i];
        match &e.op {
            Op::Logout { tokens } => tokens.iter().map(|t| t.sid).collect(),
            Op::EndOne { sid, .. } => vec![*sid],
            Op::EndOthers { user, keep } | Op::PasswordChange { user, keep } => {
                self.sessions_of(*user, Some(*keep), e.answered)
            }
            Op::LogoutEverywhere { token } => self.sessions_of(token.user, None, e.answered),
            Op::Refresh { token } if !self.fresh(token.uuid, e.answered, i) => vec![token.sid],
            _ => vec![],
        }
    }

    /// Whether refresh token `x`, presented by call `by` and in effect at some instant up to
    /// `at`, was surely not rotated yet or rotated inside the grace window.
    fn fresh(&self, x: Uuid, at: i64, by: usize) -> bool {
        let others = self.presented.get(&x).map(Vec::as_slice).unwrap_or(&[]);
        others
            .iter()
            .map(|&q| (q, self.events[q].invoked))
            .filter(|&(q, invoked)| q != by && invoked < at + self.margin)
            .all(|(_, invoked)| invoked > at - self.grace + self.margin)
    }

    fn fresh_access(&self, access: Uuid, at: i64, by: usize) -> bool {
        self.pair
            .get(&access)
            .is_some_and(|x| self.fresh(*x, at, by))
    }

    /// Whether no call but `by` may have ended the session by `at`.
    fn live(&self, sid: Uuid, at: i64, by: usize) -> bool {
        self.logins.contains_key(&sid)
            && self.may_end.get(&sid).is_none_or(|calls| {
                calls
                    .iter()
                    .all(|&(invoked, q)| q == by || invoked > at + self.margin)
            })
    }

    /// A replay surely outside the grace window of its token's rotation.
    fn late(&self, x: Uuid, invoked: i64) -> bool {
        self.first_ok
            .get(&x)
            .is_some_and(|first| invoked > first + self.grace + self.margin)
    }

    fn unexpired(&self, token: &Token, answered: i64) -> bool {
        answered + self.margin < token.exp_ms
    }

    /// Sessions that call `i` surely ended, with the kind of call.
    fn sessions_it_ended(&self, i: usize) -> (&'static str, Vec<Uuid>) {
        let e = &self.events[i];
        let done = e.answer == Answer::Done;
        match &e.op {
            Op::Logout { tokens } if done => (
                "logout",
                tokens
                    .iter()
                    .filter(|t| self.unexpired(t, e.answered))
                    .map(|t| t.sid)
                    .collect(),
            ),
            Op::EndOne { user, sid } if done || e.answer == Answer::Failed("not_found") => {
                let theirs = self.sessions.get(user).is_some_and(|s| s.contains(sid));
                ("end_one", if theirs { vec![*sid] } else { vec![] })
            }
            Op::EndOthers { user, keep } if done => (
                "end_others",
                self.answered_sessions_of(*user, Some(*keep), e.invoked),
            ),
            Op::PasswordChange { user, keep } if done => (
                "password_change",
                self.answered_sessions_of(*user, Some(*keep), e.invoked),
            ),
            Op::LogoutEverywhere { token }
                if done
                    && self.unexpired(token, e.answered)
                    && self.fresh_access(token.uuid, e.answered, i)
                    && self.live(token.sid, e.answered, i) =>
            {
                (
                    "logout_everywhere",
                    self.answered_sessions_of(token.user, None, e.invoked),
                )
            }
            Op::Refresh { token } if e.answer == Answer::Failed(REUSED) => {
                ("refresh_reused", vec![token.sid])
            }
            Op::Refresh { token }
                if e.answer == Answer::Failed(REVOKED)
                    && self.late(token.uuid, e.invoked)
                    && self.unexpired(token, e.answered) =>
            {
                ("late_replay_revoked", vec![token.sid])
            }
            _ => ("", vec![]),
        }
    }

    /// The user's sessions whose login was answered before `before`, but `keep`.
    fn answered_sessions_of(&self, user: Uuid, keep: Option<Uuid>, before: i64) -> Vec<Uuid> {
        let all = self.sessions.get(&user).map(Vec::as_slice).unwrap_or(&[]);
        all.iter()
            .copied()
            .filter(|sid| Some(*sid) != keep && self.logins[sid].1 + self.margin < before)
            .collect()
    }
}

/// Checks the history; `grace_ms` is `REFRESH_REUSE_GRACE`.
pub fn check(events: &[Event], grace_ms: i64, margin_ms: i64) -> Verdict {
    let index = Index::new(events, grace_ms, margin_ms);
    let mut verdict = Verdict::default();
    let mut flag = |property: u8, event: usize, sid: Option<Uuid>, why: String| {
        verdict.violations.push(Violation {
            property,
            event,
            sid,
            why,
        });
    };

    // Sessions surely ended: (answered, event) per session.
    let mut ended: HashMap<Uuid, Vec<(i64, usize)>> = HashMap::new();
    let mut ended_counts: HashMap<&'static str, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let (kind, sids) = index.sessions_it_ended(i);
        for sid in sids {
            *ended_counts.entry(kind).or_default() += 1;
            ended.entry(sid).or_default().push((e.answered, i));
        }
    }

    for (i, e) in events.iter().enumerate() {
        if e.answer == Answer::Failed("internal_error") {
            flag(0, i, None, "answered internal_error".into());
        }
        // What this call accepted: (session, what).
        let accepted: Vec<(Uuid, &str)> = match (&e.op, &e.answer) {
            (Op::Refresh { token }, Answer::Tokens { .. }) => vec![(token.sid, "refresh")],
            (Op::Authenticate { token }, Answer::Done) => vec![(token.sid, "access token")],
            (Op::List { .. }, Answer::Listed(sids)) => sids.iter().map(|s| (*s, "list")).collect(),
            _ => vec![],
        };
        for (sid, what) in accepted {
            verdict.accepted += 1;
            let mut before = ended.get(&sid).into_iter().flatten();
            if let Some(&(_, k)) = before.find(|(at, _)| at + margin_ms < e.invoked) {
                let property = if matches!(events[k].op, Op::Refresh { .. }) {
                    1
                } else {
                    4
                };
                flag(
                    property,
                    i,
                    Some(sid),
                    format!("{what} accepted after event #{k} ended the session"),
                );
            }
        }
        match &e.op {
            Op::Refresh { token } => {
                let x = token.uuid;
                if index.late(x, e.invoked) && index.unexpired(token, e.answered) {
                    verdict.late_replays += 1;
                    if e.answer != Answer::Failed(REUSED) && e.answer != Answer::Failed(REVOKED) {
                        flag(
                            1,
                            i,
                            Some(token.sid),
                            format!("late replay answered {}", short_answer(&e.answer)),
                        );
                    }
                }
                let innocent = index.fresh(x, e.answered, i)
                    && index.live(token.sid, e.answered, i)
                    && index.unexpired(token, e.answered);
                if innocent {
                    verdict.innocent += 1;
                    judge_innocent(&mut flag, i, token.sid, "refresh", &e.answer);
                }
            }
            Op::Authenticate { token } => {
                let innocent = index.fresh_access(token.uuid, e.answered, i)
                    && index.live(token.sid, e.answered, i)
                    && index.unexpired(token, e.answered);
                if innocent {
                    verdict.innocent += 1;
                    judge_innocent(&mut flag, i, token.sid, "authenticate", &e.answer);
                }
            }
            _ => {}
        }
    }

    // Property 3: the answers to each presented token lie on one chain.
    let mut next: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    let mut answered_for: HashMap<Uuid, Vec<(Uuid, usize)>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if let (Op::Refresh { token }, Answer::Tokens { refresh, .. }) = (&e.op, &e.answer) {
            next.entry(token.uuid).or_default().insert(refresh.uuid);
            answered_for
                .entry(token.uuid)
                .or_default()
                .push((refresh.uuid, i));
        }
    }
    let reaches = |from: Uuid, to: Uuid| -> bool {
        let mut seen = HashSet::from([from]);
        let mut todo = vec![from];
        while let Some(t) = todo.pop() {
            if t == to {
                return true;
            }
            for n in next.get(&t).into_iter().flatten() {
                if seen.insert(*n) {
                    todo.push(*n);
                }
            }
        }
        false
    };
    for (x, answers) in &answered_for {
        if answers.len() < 2 {
            continue;
        }
        verdict.shared += 1;
        for (n, (a, _)) in answers.iter().enumerate() {
            for (b, i) in &answers[n + 1..] {
                if a != b && !reaches(*a, *b) && !reaches(*b, *a) {
                    let sid = match events[*i].op {
                        Op::Refresh { token } => Some(token.sid),
                        _ => None,
                    };
                    flag(
                        3,
                        *i,
                        sid,
                        format!("token {x} was rotated into two chains: {a} and {b}"),
                    );
                }
            }
        }
    }
    verdict.ended = ended_counts;
    verdict
}

fn judge_innocent(
    flag: &mut impl FnMut(u8, usize, Option<Uuid>, String),
    i: usize,
    sid: Uuid,
    what: &str,
    answer: &Answer,
) {
    match answer {
        Answer::Failed(code) if *code == REUSED || *code == REVOKED => flag(
            2,
            i,
            Some(sid),
            format!("innocent {what} of a live session answered {code}"),
        ),
        Answer::Failed(code) => flag(
            5,
            i,
            Some(sid),
            format!("innocent {what} of a live, unexpired session answered {code}"),
        ),
        _ => {}
    }
}

/// The events of `sid`'s session (and its user's session-wide calls) invoked up to a little
/// after event `focus`, the last `TRACE_ROWS` of them, in the order they were invoked, with
/// times in ms from the first event.
pub fn trace(events: &[Event], sid: Uuid, focus: usize) -> String {
    let user = events.iter().find_map(|e| match (&e.op, &e.answer) {
        (Op::Login { user }, Answer::Tokens { refresh, .. }) if refresh.sid == sid => Some(*user),
        _ => None,
    });
    let start = events.iter().map(|e| e.invoked).min().unwrap_or(0);
    let mut rows: Vec<(usize, &Event)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| touches(e, sid, user))
        .collect();
    rows.sort_by_key(|(_, e)| e.invoked);
    let until = events[focus].answered + 200;
    rows.retain(|(_, e)| e.invoked <= until);
    let rows = &rows[rows.len().saturating_sub(TRACE_ROWS)..];
    let mut out = format!("session {sid} (user {user:?}):\n");
    for &(i, e) in rows {
        let op = match &e.op {
            Op::Login { .. } => "login".to_owned(),
            Op::Refresh { token } => format!("refresh {}", short(&token.uuid)),
            Op::Authenticate { token } => format!("authenticate {}", short(&token.uuid)),
            Op::Logout { tokens } => format!(
                "logout {:?}",
                tokens.iter().map(|t| short(&t.uuid)).collect::<Vec<_>>()
            ),
            Op::LogoutEverywhere { token } => format!("logout_everywhere {}", short(&token.uuid)),
            Op::EndOne { sid, .. } => format!("end_one {}", short(sid)),
            Op::EndOthers { keep, .. } => format!("end_others keep {}", short(keep)),
            Op::PasswordChange { keep, .. } => format!("password_change keep {}", short(keep)),
            Op::List { .. } => "list".to_owned(),
        };
        let _ = writeln!(
            out,
            "  #{i:<6} {:>7}..{:<7} {:<14} {op} -> {}",
            e.invoked - start,
            e.answered - start,
            e.task,
            short_answer(&e.answer)
        );
    }
    out
}

const TRACE_ROWS: usize = 40;

/// The first 8 hex digits of a UUID, enough to tell tokens apart in a trace.
fn short(u: &Uuid) -> String {
    u.simple().to_string()[..8].to_owned()
}

fn short_answer(answer: &Answer) -> String {
    match answer {
        Answer::Tokens { access, refresh } => format!(
            "tokens a={} r={} (sid {})",
            short(&access.uuid),
            short(&refresh.uuid),
            short(&refresh.sid)
        ),
        Answer::Listed(sids) => format!("{:?}", sids.iter().map(short).collect::<Vec<_>>()),
        other => format!("{other:?}"),
    }
}

fn touches(e: &Event, sid: Uuid, user: Option<Uuid>) -> bool {
    let mine = |t: &Token| t.sid == sid;
    let of_user = |u: &Uuid| Some(*u) == user;
    match &e.op {
        Op::Login { .. } => {
            matches!(&e.answer, Answer::Tokens { refresh, .. } if refresh.sid == sid)
        }
        Op::Refresh { token } | Op::Authenticate { token } => mine(token),
        Op::Logout { tokens } => tokens.iter().any(mine),
        Op::LogoutEverywhere { token } => of_user(&token.user),
        Op::EndOne { sid: s, .. } => *s == sid,
        Op::EndOthers { user: u, .. } | Op::PasswordChange { user: u, .. } => of_user(u),
        Op::List { user: u } => of_user(u),
    }
}

/// How many violations of each property, then the first of each property with its
/// session's trace, up to `limit` of them.
pub fn explain(events: &[Event], violations: &[Violation], limit: usize) -> String {
    let mut counts: std::collections::BTreeMap<u8, usize> = Default::default();
    for v in violations {
        *counts.entry(v.property).or_default() += 1;
    }
    let mut out = format!("violations by property: {counts:?}\n");
    let firsts = counts
        .keys()
        .filter_map(|p| violations.iter().find(|v| v.property == *p));
    for v in firsts.take(limit) {
        let _ = writeln!(
            out,
            "property {}: event #{} ({}): {}",
            v.property, v.event, events[v.event].task, v.why
        );
        if let Some(sid) = v.sid {
            out.push_str(&trace(events, sid, v.event));
        }
    }
    out
}

/// The checker on small hand-made histories: each property's violation is flagged, and a
/// history that keeps them all is not.
mod tests {
    use super::*;

    const GRACE: i64 = 1000;
    const MARGIN: i64 = 25;

    /// A user's session, its tokens numbered in the order they are issued.
    struct Fixture {
        user: Uuid,
        sid: Uuid,
        events: Vec<Event>,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                user: Uuid::new_v4(),
                sid: Uuid::new_v4(),
                events: Vec::new(),
            }
        }

        /// Token `n` of the session (access tokens odd, refresh tokens even, by convention of
        /// the tests: `pair(n)` is `(2n + 1, 2n)`).
        fn token(&self, n: u128) -> Token {
            self.token_of(self.sid, n)
        }

        fn token_of(&self, sid: Uuid, n: u128) -> Token {
            Token {
                uuid: Uuid::from_u128(sid.as_u128() ^ (n + 1)),
                sid,
                user: self.user,
                exp_ms: 60_000,
            }
        }

        fn pair(&self, n: u128) -> Answer {
            self.pair_of(self.sid, n)
        }

        fn pair_of(&self, sid: Uuid, n: u128) -> Answer {
            Answer::Tokens {
                access: self.token_of(sid, 2 * n + 1),
                refresh: self.token_of(sid, 2 * n),
            }
        }

        fn add(&mut self, invoked: i64, answered: i64, op: Op, answer: Answer) -> &mut Self {
            self.events.push(Event {
                task: "t".into(),
                invoked,
                answered,
                op,
                answer,
            });
            self
        }

        fn login(&mut self, at: i64) -> &mut Self {
            let (user, answer) = (self.user, self.pair(0));
            self.add(at, at + 10, Op::Login { user }, answer)
        }

        /// Refresh token of pair `from`, answered with pair `to`.
        fn refresh(&mut self, at: i64, from: u128, answer: Answer) -> &mut Self {
            let token = self.token(2 * from);
            self.add(at, at + 10, Op::Refresh { token }, answer)
        }

        fn authenticate(&mut self, at: i64, pair: u128, answer: Answer) -> &mut Self {
            let token = self.token(2 * pair + 1);
            self.add(at, at + 10, Op::Authenticate { token }, answer)
        }

        fn properties(&self) -> Vec<u8> {
            let verdict = check(&self.events, GRACE, MARGIN);
            let mut flagged: Vec<u8> = verdict.violations.iter().map(|v| v.property).collect();
            flagged.dedup();
            flagged
        }
    }

    #[test]
    fn a_history_that_keeps_every_property_is_not_flagged() {
        let mut h = Fixture::new();
        let (one, two) = (h.pair(1), h.pair(2));
        h.login(0)
            .refresh(100, 0, one.clone())
            // Another tab with the same token, inside the window: the same successors.
            .refresh(500, 0, one)
            .authenticate(550, 1, Answer::Done)
            .refresh(600, 1, two)
            // After the window: reuse, and the session is over.
            .refresh(2000, 0, Answer::Failed(REUSED))
            .authenticate(2100, 2, Answer::Failed(REVOKED))
            .refresh(2200, 2, Answer::Failed(REVOKED));
        assert_eq!(h.properties(), Vec::<u8>::new());
        let verdict = check(&h.events, GRACE, MARGIN);
        assert_eq!(verdict.late_replays, 1);
        assert_eq!(verdict.innocent, 4, "{verdict:?}");
    }

    #[test]
    fn a_late_replay_that_is_accepted_breaks_property_1() {
        let mut h = Fixture::new();
        let (one, again) = (h.pair(1), h.pair(2));
        h.login(0).refresh(100, 0, one).refresh(2000, 0, again);
        assert!(h.properties().contains(&1), "{:?}", h.properties());
    }

    #[test]
    fn a_token_accepted_after_a_replay_ended_the_session_breaks_property_1() {
        let mut h = Fixture::new();
        let (one, two) = (h.pair(1), h.pair(2));
        h.login(0)
            .refresh(100, 0, one)
            .refresh(2000, 0, Answer::Failed(REUSED))
            .refresh(2100, 1, two);
        assert_eq!(h.properties(), vec![1]);
    }

    #[test]
    fn an_innocent_refresh_answered_as_reuse_breaks_property_2() {
        let mut h = Fixture::new();
        let one = h.pair(1);
        h.login(0)
            .refresh(100, 0, one)
            .refresh(300, 1, Answer::Failed(REUSED));
        assert_eq!(h.properties(), vec![2]);
        // A sibling tab's token inside the window is innocent too.
        let mut h = Fixture::new();
        let one = h.pair(1);
        h.login(0)
            .refresh(100, 0, one)
            .refresh(700, 0, Answer::Failed(REVOKED));
        assert_eq!(h.properties(), vec![2]);
    }

    #[test]
    fn one_token_rotated_into_two_chains_breaks_property_3() {
        let mut h = Fixture::new();
        let (one, other) = (h.pair(1), h.pair(2));
        h.login(0).refresh(100, 0, one).refresh(105, 0, other);
        assert_eq!(h.properties(), vec![3]);
    }

    #[test]
    fn a_token_accepted_after_its_session_ended_breaks_property_4() {
        // Logout with the access token; the refresh token still works.
        let mut h = Fixture::new();
        let (access, one) = (h.token(1), h.pair(1));
        h.login(0)
            .add(
                100,
                110,
                Op::Logout {
                    tokens: vec![access],
                },
                Answer::Done,
            )
            .refresh(200, 0, one);
        assert_eq!(h.properties(), vec![4]);
        // A password change from another session; this one's access token still works.
        let mut h = Fixture::new();
        let other = Uuid::new_v4();
        let (user, answer) = (h.user, h.pair_of(other, 0));
        h.login(0).add(20, 30, Op::Login { user }, answer).add(
            100,
            150,
            Op::PasswordChange { user, keep: other },
            Answer::Done,
        );
        h.authenticate(200, 0, Answer::Done);
        assert_eq!(h.properties(), vec![4]);
        // An ended session that is still listed.
        let mut h = Fixture::new();
        let (user, sid) = (h.user, h.sid);
        h.login(0)
            .add(100, 110, Op::EndOne { user, sid }, Answer::Done)
            .add(200, 210, Op::List { user }, Answer::Listed(vec![sid]));
        assert_eq!(h.properties(), vec![4]);
    }

    #[test]
    fn an_innocent_call_that_fails_breaks_property_5() {
        let mut h = Fixture::new();
        h.login(0)
            .refresh(100, 0, Answer::Failed("service_unavailable"));
        assert_eq!(h.properties(), vec![5]);
        let mut h = Fixture::new();
        h.login(0)
            .authenticate(100, 0, Answer::Failed("token_expired"));
        assert_eq!(h.properties(), vec![5]);
    }

    #[test]
    fn ambiguous_timings_are_not_judged() {
        // A replay near the end of the window, accepted (it might have been inside), and a
        // call racing a logout: no verdict.
        let mut h = Fixture::new();
        let (one, access) = (h.pair(1), h.token(3));
        h.login(0)
            .refresh(100, 0, one.clone())
            .refresh(1100, 0, one)
            .add(
                2000,
                2010,
                Op::Logout {
                    tokens: vec![access],
                },
                Answer::Done,
            )
            .authenticate(2005, 1, Answer::Done);
        assert_eq!(h.properties(), Vec::<u8>::new());
    }
}
