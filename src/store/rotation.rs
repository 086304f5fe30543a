//! Refresh-token rotation, decided once for every backend: a backend reads what it holds
//! about the presented token, `decide` says what to do, and the backend does it atomically.

use std::time::Duration;

use uuid::Uuid;

use crate::clock::ExpiresAt;
use crate::store::error::Result;

/// How many rotations an in-grace replay follows to reach the newest token.
pub const MAX_CHAIN: usize = 32;

/// The tokens a refresh token was rotated into, enough to sign them again identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Successor {
    pub access: Uuid,
    pub refresh: Uuid,
    pub iat: i64,
}

/// A refresh entry: still usable, or already rotated into its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    /// Not rotated yet; `access` is the access token issued with it.
    Live {
        access: Uuid,
    },
    Rotated(Successor),
}

/// What a presented refresh token turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Consumed now; its successors are stored.
    Rotated,
    /// Rotated moments ago (another tab won the race): here is the newest token it led to.
    InGrace(Successor),
    /// Rotated before the grace window: a replay. The session has been ended (now, or by an
    /// earlier replay).
    Reused,
    /// Its session is gone (logged out, expired, revoked).
    Revoked,
    /// Nothing done: the user changed since the caller read it (check the user again).
    UserChanged,
}

/// A rotation to attempt: the presented token, and what it would become.
#[derive(Debug, Clone, Copy)]
pub struct Rotate {
    pub user: Uuid,
    pub sid: Uuid,
    /// The presented refresh token's `token_uuid`.
    pub presented: Uuid,
    pub next: Successor,
    pub access_expires: ExpiresAt,
    pub refresh_expires: ExpiresAt,
    /// How long a replay counts as another tab, and the previous access token keeps working.
    pub grace: Duration,
}

/// What one read found about the presented token and its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The token's entry, if it exists and belongs to the token's user.
    pub entry: Option<RefreshState>,
    pub session: bool,
    /// The token was rotated within the grace window.
    pub in_grace: bool,
    /// The session was ended because this very token was replayed.
    pub reused: bool,
}

/// What a backend must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Consume the entry, provided it is unchanged since it was read.
    Rotate { old_access: Uuid },
    /// Another tab rotated it moments ago: answer with the newest token of its chain.
    FollowChain(Successor),
    /// A replay after the window: end the session and mark it as reused.
    RevokeForReuse,
    /// Nothing to change.
    Answer(Rotation),
}

pub fn decide(seen: &Seen) -> Step {
    match seen.entry {
        None => Step::Answer(Rotation::Revoked),
        Some(RefreshState::Live { .. }) if !seen.session => Step::Answer(Rotation::Revoked),
        Some(RefreshState::Live { access }) => Step::Rotate { old_access: access },
        Some(RefreshState::Rotated(successor)) => match (seen.in_grace, seen.session) {
            (true, true) => Step::FollowChain(successor),
            (false, true) => Step::RevokeForReuse,
            // The replayed token keeps answering as reuse; every other token of the session,
            // and the leftovers of an ordinary logout, answer as revoked.
            (false, false) if seen.reused => Step::Answer(Rotation::Reused),
            (_, false) => Step::Answer(Rotation::Revoked),
        },
    }
}

/// The live end of a rotation chain that starts at `successor`; `lookup` reads a refresh
/// entry of the session. A tab that comes back late, after other tabs rotated twice, must
/// get the newest token, not one already rotated (which would be named reuse once its own
/// window ends). `None` if the chain is broken (the session ended meanwhile).
pub async fn newest(
    mut successor: Successor,
    mut lookup: impl AsyncFnMut(Uuid) -> Result<Option<RefreshState>>,
) -> Result<Option<Successor>> {
    for _ in 0..MAX_CHAIN {
        match lookup(successor.refresh).await? {
            Some(RefreshState::Live { .. }) => return Ok(Some(successor)),
            Some(RefreshState::Rotated(next)) => successor = next,
            None => return Ok(None),
        }
    }
    // Dozens of rotations within one grace window: give the last one seen.
    Ok(Some(successor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn successor() -> Successor {
        Successor {
            access: Uuid::new_v4(),
            refresh: Uuid::new_v4(),
            iat: 1,
        }
    }

    fn seen(entry: Option<RefreshState>, session: bool, in_grace: bool, reused: bool) -> Seen {
        Seen {
            entry,
            session,
            in_grace,
            reused,
        }
    }

    #[test]
    fn a_live_token_of_a_live_session_rotates() {
        let access = Uuid::new_v4();
        let live = Some(RefreshState::Live { access });
        assert_eq!(
            decide(&seen(live, true, false, false)),
            Step::Rotate { old_access: access }
        );
    }

    #[test]
    fn a_token_without_entry_or_session_is_revoked() {
        let live = Some(RefreshState::Live {
            access: Uuid::new_v4(),
        });
        let revoked = Step::Answer(Rotation::Revoked);
        assert_eq!(decide(&seen(None, true, false, false)), revoked);
        assert_eq!(decide(&seen(None, false, true, true)), revoked);
        assert_eq!(decide(&seen(live, false, false, false)), revoked);
        assert_eq!(decide(&seen(live, false, false, true)), revoked);
    }

    #[test]
    fn a_rotated_token_is_another_tab_only_within_the_window() {
        let next = successor();
        let rotated = Some(RefreshState::Rotated(next));
        assert_eq!(
            decide(&seen(rotated, true, true, false)),
            Step::FollowChain(next)
        );
        assert_eq!(
            decide(&seen(rotated, true, false, false)),
            Step::RevokeForReuse
        );
    }

    #[test]
    fn after_the_session_ends_only_a_reused_session_answers_reuse() {
        let rotated = Some(RefreshState::Rotated(successor()));
        assert_eq!(
            decide(&seen(rotated, false, false, true)),
            Step::Answer(Rotation::Reused)
        );
        assert_eq!(
            decide(&seen(rotated, false, false, false)),
            Step::Answer(Rotation::Revoked)
        );
        assert_eq!(
            decide(&seen(rotated, false, true, false)),
            Step::Answer(Rotation::Revoked)
        );
    }

    #[tokio::test]
    async fn a_chain_ends_at_its_first_live_token() {
        let (a, b) = (successor(), successor());
        let entries = std::collections::HashMap::from([
            (a.refresh, RefreshState::Rotated(b)),
            (b.refresh, RefreshState::Live { access: b.access }),
        ]);
        let lookup = async |refresh| Ok(entries.get(&refresh).copied());
        assert_eq!(newest(a, lookup).await.unwrap(), Some(b));
        let broken = async |_| Ok(None);
        assert_eq!(newest(a, broken).await.unwrap(), None);
        let endless = async |_| Ok(Some(RefreshState::Rotated(a)));
        assert_eq!(newest(b, endless).await.unwrap(), Some(a), "bounded");
    }
}
