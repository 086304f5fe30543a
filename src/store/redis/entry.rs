//! The values of token entries in Redis, written and read only here.
//!
//! A session and an access entry hold the user id. A refresh entry holds `user|access` while
//! live, and `user|access|next access|next refresh|iat` once rotated. The reuse marker holds
//! the replayed token's id.

use uuid::Uuid;

use crate::store::rotation::{RefreshState, Successor};

pub fn session(user: Uuid) -> String {
    user.to_string()
}

pub fn access(user: Uuid) -> String {
    user.to_string()
}

pub fn reused(replayed: Uuid) -> String {
    replayed.to_string()
}

pub fn refresh_live(user: Uuid, access: Uuid) -> String {
    format!("{user}|{access}")
}

/// A live refresh entry's value once rotated into `next`.
pub fn refresh_rotated(live_value: &str, next: &Successor) -> String {
    format!("{live_value}|{}|{}|{}", next.access, next.refresh, next.iat)
}

/// Whether an entry of either kind belongs to `user`.
pub fn owned_by(value: &str, user: Uuid) -> bool {
    value.split('|').next().and_then(|u| u.parse::<Uuid>().ok()) == Some(user)
}

/// A refresh entry of `user`, or `None` if it is another user's or unreadable.
pub fn parse_refresh(value: &str, user: Uuid) -> Option<RefreshState> {
    if !owned_by(value, user) {
        return None;
    }
    let mut parts = value.split('|').skip(1);
    let access = parts.next()?.parse().ok()?;
    let Some(next_access) = parts.next() else {
        return Some(RefreshState::Live { access });
    };
    Some(RefreshState::Rotated(Successor {
        access: next_access.parse().ok()?,
        refresh: parts.next()?.parse().ok()?,
        iat: parts.next()?.parse().ok()?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_entries_read_back_as_written() {
        let (user, access) = (Uuid::new_v4(), Uuid::new_v4());
        let next = Successor {
            access: Uuid::new_v4(),
            refresh: Uuid::new_v4(),
            iat: 1_700_000_000,
        };
        let live = refresh_live(user, access);
        assert_eq!(
            parse_refresh(&live, user),
            Some(RefreshState::Live { access })
        );
        let rotated = refresh_rotated(&live, &next);
        assert_eq!(
            parse_refresh(&rotated, user),
            Some(RefreshState::Rotated(next))
        );
        assert_eq!(parse_refresh(&live, Uuid::new_v4()), None);
        assert_eq!(parse_refresh("garbage", user), None);
        assert!(owned_by(&super::access(user), user));
    }
}
