//! Copies kept in memory for the `/api/users/me` path, each good only while what it copies
//! cannot have changed. Both are bounded and evict by recent use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use uuid::Uuid;

use crate::domain::User;
use crate::error::{AppError, Result};
use crate::service::tokens::{Claims, has_expired};

/// Access tokens that verified here, by their exact text. An RS256 check costs about 21 µs;
/// a token's signature and claims never change, so only its expiry is checked again, and
/// its session is checked in the store on every request as before. Only tokens that passed
/// the full check get in, so forged or garbled ones cannot fill it.
pub struct VerifiedTokens {
    cache: Cache<String, Arc<Claims>>,
}

impl VerifiedTokens {
    pub fn new(capacity: usize) -> Self {
        VerifiedTokens {
            cache: Cache::new(capacity),
        }
    }

    /// The claims of `token`, from the cache or from `verify` (whose success is kept).
    pub fn get_or_verify(
        &self,
        token: &str,
        verify: impl FnOnce() -> Result<Claims>,
    ) -> Result<Arc<Claims>> {
        if let Some(claims) = self.cache.get(token) {
            if has_expired(&claims) {
                self.cache.remove(token);
                return Err(AppError::TokenExpired);
            }
            return Ok(claims);
        }
        let claims = Arc::new(verify()?);
        self.cache.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }
}

/// Users as read under a stamp (`store::sessions::Stamp`). A copy serves only while the
/// user's stamp is still the one it was read under, so a change made through any instance
/// reaches every instance at its next request; and never longer than `max_age`, in case a
/// change was never announced. The copies never hold the password hash.
pub struct Users {
    cache: Cache<Uuid, Held>,
    max_age: Duration,
}

#[derive(Clone)]
struct Held {
    stamp: Arc<str>,
    user: Arc<User>,
    read_at: Instant,
}

impl Users {
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Users {
            cache: Cache::new(capacity),
            max_age,
        }
    }

    fn fresh(&self, id: Uuid) -> Option<Held> {
        self.cache
            .get(&id)
            .filter(|copy| copy.read_at.elapsed() < self.max_age)
    }

    /// The copy read under `stamp`, if that is the copy held and it is fresh.
    pub fn get(&self, id: Uuid, stamp: &str) -> Option<Arc<User>> {
        self.fresh(id)
            .filter(|copy| &*copy.stamp == stamp)
            .map(|copy| copy.user)
    }

    /// The fresh copy held and the stamp it was read under, whatever that is.
    pub fn held(&self, id: Uuid) -> Option<(Arc<str>, Arc<User>)> {
        self.fresh(id).map(|copy| (copy.stamp, copy.user))
    }

    /// Keeps `user` as read under `stamp`: read the stamp first, then the user.
    pub fn insert(&self, stamp: &str, user: User) -> Arc<User> {
        let user = Arc::new(user.without_hash());
        let copy = Held {
            stamp: stamp.into(),
            user: user.clone(),
            read_at: Instant::now(),
        };
        self.cache.insert(user.id, copy);
        user
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tokens::TokenType;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            token_uuid: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            typ: TokenType::Access,
            iat: 0,
            nbf: 0,
            exp,
            iss: "i".into(),
            aud: "a".into(),
            role: None,
            amr: Vec::new(),
        }
    }

    #[test]
    fn a_cached_token_still_expires_and_a_failed_one_is_not_kept() {
        let tokens = VerifiedTokens::new(8);
        let now = chrono::Utc::now().timestamp();
        let live = tokens.get_or_verify("t1", || Ok(claims(now + 60))).unwrap();
        let again = tokens
            .get_or_verify("t1", || panic!("verified twice"))
            .unwrap();
        assert!(Arc::ptr_eq(&live, &again));

        assert!(
            tokens
                .get_or_verify("t2", || Err(AppError::TokenInvalid))
                .is_err()
        );
        assert!(tokens.get_or_verify("t2", || Ok(claims(now + 60))).is_ok());

        tokens.cache.insert("t3".into(), Arc::new(claims(now - 1)));
        assert!(matches!(
            tokens.get_or_verify("t3", || panic!("not reverified")),
            Err(AppError::TokenExpired)
        ));
    }

    #[test]
    fn a_user_copy_serves_only_under_its_stamp_and_holds_no_hash() {
        let users = Users::new(8, Duration::from_secs(60));
        let id = Uuid::new_v4();
        let user = User {
            id,
            name: "n".into(),
            email: "e@x.io".into(),
            password_hash: "$argon2id$secret".into(),
            role: "user".into(),
            photo: "p".into(),
            verified: false,
            provider: "local".into(),
            mfa: false,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        users.insert("s1", user);
        assert!(users.get(id, "s1").unwrap().password_hash.is_empty());
        assert!(users.get(id, "s2").is_none());
        let (stamp, held) = users.held(id).unwrap();
        assert_eq!((&*stamp, held.id), ("s1", id));

        let aged = Users::new(8, Duration::ZERO);
        aged.insert("s1", users.get(id, "s1").unwrap().as_ref().clone());
        assert!(aged.get(id, "s1").is_none(), "older than its max age");
        assert!(aged.held(id).is_none());
    }
}
