//! The file as the killed process left it, and what it must hold.

use std::collections::HashMap;

use sqlx::{Connection, Row, SqliteConnection};

use super::Ledger;
use super::load::{Client, Open};

pub struct TokenRow {
    pub sid: String,
    pub expires_at: i64,
    /// Refresh rows only: the access token issued with it.
    pub access_uuid: Option<String>,
    pub next_access: Option<String>,
    pub next_refresh: Option<String>,
}

/// The file as the killed process left it.
pub struct Snapshot {
    pub integrity: Vec<String>,
    /// email -> id
    pub users: HashMap<String, String>,
    /// sid -> (user id, expires_at)
    pub sessions: HashMap<String, (String, i64)>,
    pub tokens: HashMap<String, TokenRow>,
}

pub async fn snapshot(file: &str) -> Snapshot {
    let mut conn = SqliteConnection::connect(&format!("sqlite:{file}"))
        .await
        .expect("the file opens");
    let integrity = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .expect("integrity_check");
    let users = sqlx::query("SELECT email, id FROM users")
        .fetch_all(&mut conn)
        .await
        .expect("users")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let sessions = sqlx::query("SELECT sid, user_id, expires_at FROM sessions")
        .fetch_all(&mut conn)
        .await
        .expect("sessions")
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let tokens = sqlx::query(
        "SELECT token_uuid, sid, expires_at, access_uuid, next_access, next_refresh FROM tokens",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tokens")
    .iter()
    .map(|r| {
        let row = TokenRow {
            sid: r.get(1),
            expires_at: r.get(2),
            access_uuid: r.get(3),
            next_access: r.get(4),
            next_refresh: r.get(5),
        };
        (r.get(0), row)
    })
    .collect();
    conn.close().await.expect("close");
    Snapshot {
        integrity,
        users,
        sessions,
        tokens,
    }
}

/// What the file must hold whatever the clients saw: every live session has exactly one
/// unrotated refresh token, whose end is the session's, and every rotated refresh token of a
/// live session leads to a stored successor. A rotation cut in two breaks one or the other.
pub fn assert_no_half_rotation(file: &Snapshot) {
    let mut unrotated: HashMap<&str, Vec<&TokenRow>> = HashMap::new();
    for (uuid, row) in &file.tokens {
        if row.access_uuid.is_none() || !file.sessions.contains_key(&row.sid) {
            continue;
        }
        match &row.next_refresh {
            None => unrotated.entry(&row.sid).or_default().push(row),
            Some(next) => {
                let successor = file.tokens.get(next);
                assert!(
                    successor.is_some_and(|s| s.sid == row.sid && s.access_uuid == row.next_access),
                    "refresh token {uuid} was rotated into {next}, which is not stored with its access token"
                );
            }
        }
    }
    for (sid, (_, expires_at)) in &file.sessions {
        let live = unrotated
            .get(sid.as_str())
            .map_or(&[][..], |v| v.as_slice());
        assert_eq!(
            live.len(),
            1,
            "session {sid} has {} unrotated refresh tokens",
            live.len()
        );
        assert_eq!(
            live[0].expires_at, *expires_at,
            "session {sid} ends with its newest refresh token"
        );
    }
}

/// After a kill, before the restart: the file is intact and holds what was answered; what
/// was in flight is resolved from it, one way or the other.
pub fn check_file(file: &Snapshot, clients: &mut [Client], ledger: &mut Ledger) {
    assert_eq!(file.integrity, ["ok"], "PRAGMA integrity_check");
    assert_no_half_rotation(file);
    for client in clients.iter_mut() {
        ledger.registered.append(&mut client.registered);
    }
    for email in &ledger.registered {
        assert!(
            file.users.contains_key(email),
            "{email} was registered (201) before a kill and is gone"
        );
    }
    ledger.tally.registers_found = ledger.registered.len();
    for client in clients.iter() {
        for chain in client.parked.iter().chain(&client.chain) {
            ledger.known_sids.insert(chain.sid.clone());
        }
    }
    for (index, client) in clients.iter_mut().enumerate() {
        match client.open.take() {
            None => {}
            Some(Open::Register(email)) => {
                if file.users.contains_key(&email) {
                    ledger.tally.open_registers.0 += 1;
                    ledger.registered.push(email.clone());
                    client.parked.extend(client.chain.take());
                    client.email = Some(email);
                } else {
                    ledger.tally.open_registers.1 += 1;
                }
            }
            Some(Open::Login(email)) => {
                let user = &file.users[&email];
                let unknown = file
                    .sessions
                    .iter()
                    .filter(|(sid, (owner, _))| owner == user && !ledger.known_sids.contains(*sid))
                    .count();
                let before = ledger.unanswered_sessions.entry(email).or_default();
                assert!(
                    unknown == *before || unknown == *before + 1,
                    "one login in flight, {unknown} unknown sessions after {before}"
                );
                if unknown > *before {
                    ledger.tally.open_logins.0 += 1;
                } else {
                    ledger.tally.open_logins.1 += 1;
                }
                *before = unknown;
            }
            Some(Open::Refresh) => {
                let chain = client.chain.as_ref().expect("a session");
                let row = answered(file, &chain.sid, &chain.newest().uuid);
                if row.next_refresh.is_some() {
                    ledger.tally.open_refreshes.0 += 1;
                    ledger.lost_rotation.insert(index);
                } else {
                    ledger.tally.open_refreshes.1 += 1;
                }
            }
        }
    }
    let (mut sessions, mut rotations) = (0, 0);
    for (index, client) in clients.iter().enumerate() {
        let lost = ledger.lost_rotation.contains(&index);
        let chains = client.parked.iter().map(|c| (c, false));
        for (chain, lost) in chains.chain(client.chain.iter().map(|c| (c, lost))) {
            let owner = file.sessions.get(&chain.sid).map(|(user, _)| user);
            assert_eq!(
                owner,
                Some(&file.users[&chain.email]),
                "session {} was answered and is gone",
                chain.sid
            );
            sessions += 1;
            for pair in chain.refresh.windows(2) {
                let row = answered(file, &chain.sid, &pair[0].uuid);
                assert_eq!(
                    row.next_refresh.as_ref(),
                    Some(&pair[1].uuid),
                    "an answered rotation of {} is not in the file",
                    chain.sid
                );
                rotations += 1;
            }
            let rotated = answered(file, &chain.sid, &chain.newest().uuid);
            assert_eq!(
                rotated.next_refresh.is_some(),
                lost,
                "the newest token of {} is rotated only by a refresh in flight",
                chain.sid
            );
        }
    }
    ledger.tally.sessions_found = sessions;
    ledger.tally.rotations_found = rotations;
}

/// The row of a refresh token a client was answered with.
fn answered<'a>(file: &'a Snapshot, sid: &str, uuid: &str) -> &'a TokenRow {
    file.tokens.get(uuid).unwrap_or_else(|| {
        panic!("refresh token {uuid} of session {sid} was answered and is not in the file")
    })
}
