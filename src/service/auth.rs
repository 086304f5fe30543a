//! Register, log in, refresh, log out, and authenticate a request's token.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounterVec;
use uuid::Uuid;

use crate::domain::{Email, NewUser, Role, User};
use crate::error::{AppError, Result};
use crate::service::cache::{Users, VerifiedTokens};
use crate::service::cursor::CursorSeal;
use crate::service::password::Passwords;
use crate::service::tokens::{Claims, TokenType, Tokens, entry_expiry, has_expired};
use crate::store::Stores;
use crate::store::attempts::{LoginAttempts, Verdict};
use crate::store::rotation::{Rotate, Rotation, Successor};
use crate::store::sessions::{
    Created, Device, NewSession, SessionInfo, SessionStore, Stamp, TokenEntry, TokenRef, Vouched,
};
use crate::store::users::{Cursor, UserStore};

/// Longest password we hash; longer ones can never match, so login refuses them unhashed.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A fresh access and refresh token of one session, signed.
pub struct SessionTokens {
    pub access: String,
    pub refresh: String,
}

/// Input already checked at the edge (trimmed, lowercased, lengths).
pub struct Registration {
    pub name: String,
    pub email: Email,
    pub password: String,
    pub photo: String,
}

/// A store and its state, for the healthchecker.
pub struct StoreCheck {
    pub name: &'static str,
    pub up: bool,
}

/// How many verified tokens and user copies an instance keeps (each well under 2 KB).
const CACHE_ENTRIES: usize = 10_000;

/// How long a copy of a user serves at most, even under an unchanged stamp: a change whose
/// announcement Redis lost (a failover, a restore) or a hand edit in SQL reaches every
/// instance within this time.
const COPY_MAX_AGE: Duration = Duration::from_secs(60);

/// A refresh rotates, and a login writes its session, only for the user as last read; a user
/// changing faster than this many reads is answered 503.
const MAX_STAMP_TRIES: usize = 3;

/// The flows, with everything they use.
pub struct AuthService {
    users: UserStore,
    sessions: SessionStore,
    attempts: LoginAttempts,
    tokens: Tokens,
    passwords: Passwords,
    /// `REFRESH_REUSE_GRACE`.
    grace: Duration,
    verified: VerifiedTokens,
    user_copies: Users,
    /// `auth_refreshes_total{outcome}`.
    refreshes: IntCounterVec,
    cursors: CursorSeal,
}

fn entry(claims: &Claims) -> TokenEntry {
    TokenEntry {
        token_uuid: claims.token_uuid,
        expires_at: entry_expiry(claims),
    }
}

/// A verified token that the store no longer knows: revoked, unless it expired meanwhile.
/// Its entry outlives it by a second, but a slow store can take longer than that to answer,
/// and an SPA must see expiry (refresh) rather than revocation (log out) for a live session.
fn gone(claims: &Claims) -> AppError {
    if has_expired(claims) {
        AppError::TokenExpired
    } else {
        AppError::SessionRevoked
    }
}

/// The user went away between the guard and the change (deleted meanwhile).
fn gone_user() -> AppError {
    AppError::SessionRevoked
}

/// A change of profile, already checked at the edge: `None` leaves that field as it is.
pub struct ProfileChange {
    pub name: Option<String>,
    pub photo: Option<String>,
}

/// A page of the list of users, and where the next page starts (`None`: this is the last).
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<Cursor>,
}

/// A password change as the request asked it: the current password, the new one (already
/// checked against the rules), and the session to keep.
pub struct PasswordChange {
    pub current: String,
    pub new: String,
    pub keep: Uuid,
}

/// Whether `now` still has what a password check of `checked` proved: the same password and
/// address. A change of anything else (a name, a role) does not undo a login.
fn same_credentials(now: &User, checked: &User) -> bool {
    now.password_hash == checked.password_hash && now.email == checked.email
}

fn token_ref(claims: &Claims) -> TokenRef {
    TokenRef {
        user: claims.sub,
        sid: claims.sid,
        token_uuid: claims.token_uuid,
    }
}

impl AuthService {
    pub fn new(
        stores: Stores,
        tokens: Tokens,
        passwords: Passwords,
        grace: Duration,
        refreshes: IntCounterVec,
    ) -> Self {
        AuthService {
            refreshes,
            cursors: CursorSeal::new(tokens.derive_key("rs256-auth admin list cursor v1")),
            users: stores.users,
            sessions: stores.sessions,
            attempts: stores.attempts,
            tokens,
            passwords,
            grace,
            verified: VerifiedTokens::new(CACHE_ENTRIES),
            user_copies: Users::new(CACHE_ENTRIES, COPY_MAX_AGE),
        }
    }

    /// Seals and opens the admin list's cursors.
    pub fn cursors(&self) -> &CursorSeal {
        &self.cursors
    }

    /// The access keys as a JWK Set.
    pub fn jwks_json(&self) -> &str {
        self.tokens.jwks_json()
    }

    pub async fn register(&self, input: Registration) -> Result<User> {
        let password_hash = self.passwords.hash(input.password).await?;
        let new = NewUser {
            name: input.name,
            email: input.email,
            password_hash,
            photo: input.photo,
        };
        self.users.insert(&new).await?.ok_or(AppError::EmailTaken)
    }

    /// Unknown email and wrong password fail alike, after one argon2 run each. Every attempt
    /// counts against the email and the client IP before anything costly.
    pub async fn login(
        &self,
        email: &Email,
        password: String,
        ip: Option<IpAddr>,
        device: Device,
    ) -> Result<SessionTokens> {
        let checked = self.check_password(email, password, ip).await?;
        let sid = Uuid::new_v4();
        // The session is written only for the user as checked: the stamp is read first, then
        // the user again, and the write holds only while neither moved. A password change or
        // a deletion committed meanwhile refuses the login; any other change (a new name) is
        // read again and the write tried again.
        for _ in 0..MAX_STAMP_TRIES {
            let stamp = self.sessions.stamp(checked.id).await?;
            let user = self.users.by_id(checked.id).await?;
            let Some(user) = user.filter(|now| same_credentials(now, &checked)) else {
                return Err(AppError::InvalidCredentials);
            };
            let (mut access, refresh) = self.tokens.pair(user.id, sid)?;
            access.role = Some(user.role());
            let session = NewSession {
                user: user.id,
                sid,
                access: entry(&access),
                refresh: entry(&refresh),
                device: device.clone(),
            };
            let vouched = Vouched {
                stamp,
                updated_at: user.updated_at,
            };
            if self.sessions.create(&session, &vouched).await? == Created::Created {
                return self.sign_pair(&access, &refresh);
            }
        }
        Err(AppError::unavailable(
            "login",
            "the user changed at every try of a login",
        ))
    }

    /// The user of `email` if `password` is theirs. Whatever asks for a password (login, a
    /// password change, a deletion) counts against the same limits, per email and per
    /// client IP, before anything costly, and fails alike for every wrong answer.
    async fn check_password(
        &self,
        email: &Email,
        password: String,
        ip: Option<IpAddr>,
    ) -> Result<User> {
        if let Verdict::Limited { retry_after } = self.attempts.begin(email, ip).await? {
            let retry_after_secs = retry_after.as_millis().div_ceil(1000).max(1);
            return Err(AppError::RateLimited {
                retry_after_secs: u64::try_from(retry_after_secs).unwrap_or(u64::MAX),
            });
        }
        if password.chars().count() > MAX_PASSWORD_CHARS {
            return Err(AppError::InvalidCredentials);
        }
        let found = self.users.by_email(email).await?;
        let hash = found.as_ref().map(|u| u.password_hash.clone());
        let verified = self.passwords.verify(password, hash).await?;
        let Some(user) = found.filter(|_| verified) else {
            return Err(AppError::InvalidCredentials);
        };
        self.attempts.succeeded(email, ip).await?;
        Ok(user)
    }

    /// The user's live sessions, newest first.
    pub async fn sessions(&self, user: Uuid) -> Result<Vec<SessionInfo>> {
        self.sessions.list(user).await
    }

    /// Ends one of the user's sessions: `not_found` unless it is a live session of theirs.
    pub async fn end_session(&self, user: Uuid, sid: Uuid) -> Result<()> {
        if self.sessions.end_one(user, sid).await? {
            Ok(())
        } else {
            Err(AppError::NoSuchSession)
        }
    }

    /// Ends every session of the user but `keep`; returns how many ended.
    pub async fn end_sessions(&self, user: Uuid, keep: Option<Uuid>) -> Result<usize> {
        self.sessions.end_all(user, keep).await
    }

    /// Logout everywhere: every session of the user of each token whose own session is live.
    /// A token of an ended session (ended from another device, revoked for reuse, swept by a
    /// password change) verifies until it expires, but speaks for no one: it ends nothing.
    pub async fn logout_everywhere(&self, candidates: &[&str]) -> Result<()> {
        let mut users = Vec::new();
        for claims in self.verifying(candidates) {
            if self.sessions.check(&token_ref(&claims)).await?.live {
                users.push(claims.sub);
            }
        }
        users.sort_unstable();
        users.dedup();
        for user in users {
            self.sessions.end_all(user, None).await?;
        }
        Ok(())
    }

    /// Replaces the password of `user` after checking the current one, and ends every other
    /// session of theirs: a thief's session dies, the one that changed it goes on.
    pub async fn change_password(
        &self,
        user: &User,
        change: PasswordChange,
        ip: Option<IpAddr>,
    ) -> Result<()> {
        let email = Email::normalize(&user.email);
        self.check_password(&email, change.current, ip).await?;
        let hash = self.passwords.hash(change.new).await?;
        if !self.users.set_password(user.id, &hash).await? {
            return Err(gone_user());
        }
        // The stamp before the sweep: a login that checked the old password and writes its
        // session after the sweep finds the stamp moved (see `login`).
        self.user_changed(user.id).await?;
        self.sessions.end_all(user.id, Some(change.keep)).await?;
        Ok(())
    }

    /// Deletes `user` after checking their password, and ends all of their sessions.
    pub async fn delete_account(
        &self,
        user: &User,
        password: String,
        ip: Option<IpAddr>,
    ) -> Result<()> {
        let email = Email::normalize(&user.email);
        self.check_password(&email, password, ip).await?;
        // The user first: should ending the sessions fail, their tokens already find no
        // user and answer session_revoked. The stamp before the sweep, as for a password.
        if !self.users.delete(user.id).await? {
            return Err(gone_user());
        }
        self.user_changed(user.id).await?;
        self.sessions.end_all(user.id, None).await?;
        Ok(())
    }

    /// Consumes the refresh token and issues the next pair of the same session. The session is
    /// checked before anything costly: a dead token costs no signature.
    /// A token rotated moments ago (another tab's race) gets the very same successors; one
    /// rotated before the grace window is a replay, and ends the session.
    pub async fn refresh(&self, token: &str) -> Result<SessionTokens> {
        let result = self.rotate(token).await;
        let outcome = match &result {
            Ok((_, outcome)) => *outcome,
            Err(AppError::RefreshReused) => "reused",
            Err(AppError::SessionRevoked) => "revoked",
            Err(AppError::TokenExpired) => "expired",
            Err(AppError::TokenInvalid | AppError::NotLoggedIn) => "invalid",
            Err(AppError::ServiceUnavailable { .. }) => "unavailable",
            Err(_) => "error",
        };
        self.refreshes.with_label_values(&[outcome]).inc();
        result.map(|(tokens, _)| tokens)
    }

    async fn rotate(&self, token: &str) -> Result<(SessionTokens, &'static str)> {
        let old = self.tokens.verify(token, TokenType::Refresh)?;
        let (mut access, mut refresh) = self.tokens.pair(old.sub, old.sid)?;
        let rotate = Rotate {
            user: old.sub,
            sid: old.sid,
            presented: old.token_uuid,
            next: Successor {
                access: access.token_uuid,
                refresh: refresh.token_uuid,
                iat: access.iat,
            },
            access_expires: entry_expiry(&access),
            refresh_expires: entry_expiry(&refresh),
            grace: self.grace,
        };
        // The user is checked before rotating: a rotation whose answer never reaches the
        // client (its store down) would make the client's retry after the grace window look
        // like reuse. With a copy of the user held, the rotation checks the copy's stamp
        // itself, in the same round trip; otherwise the user is read first, under a stamp
        // that the rotation then checks, so a change in between stops it too. Either way the
        // user that the rotation vouched for gives the new access token its role.
        let mut held = self.user_copies.held(old.sub);
        let mut rotation = Rotation::UserChanged;
        let mut role = None;
        for _ in 0..MAX_STAMP_TRIES {
            let (checked, user) = match held.take() {
                Some((stamp, user)) => (Some(stamp.to_string()), user),
                None => self.check_user(&old).await?,
            };
            rotation = self.sessions.rotate(&rotate, checked.as_deref()).await?;
            role = Some(user.role());
            if rotation != Rotation::UserChanged {
                break;
            }
        }
        let outcome = match rotation {
            Rotation::Rotated => "rotated",
            Rotation::InGrace(won) => {
                let tokens = &self.tokens;
                access =
                    tokens.claims_at(old.sub, old.sid, TokenType::Access, won.access, won.iat)?;
                refresh =
                    tokens.claims_at(old.sub, old.sid, TokenType::Refresh, won.refresh, won.iat)?;
                "in_grace"
            }
            Rotation::Reused => {
                tracing::warn!(sid = %old.sid, "refresh token reused after rotation; session revoked");
                return Err(AppError::RefreshReused);
            }
            Rotation::Revoked => return Err(gone(&old)),
            Rotation::UserChanged => {
                return Err(AppError::unavailable(
                    "refresh",
                    "the user changed at every try of a refresh",
                ));
            }
        };
        access.role = role;
        Ok((self.sign_pair(&access, &refresh)?, outcome))
    }

    /// Ends the session of every one of `candidates` that verifies, as an access or a refresh
    /// token: a stale token of an old session must not shield the live one sent beside it.
    /// Dead or absent tokens are fine: logging out is idempotent.
    pub async fn logout(&self, candidates: &[&str]) -> Result<()> {
        let sessions: Vec<TokenRef> = self
            .verifying(candidates)
            .map(|claims| token_ref(&claims))
            .collect();
        self.sessions.end(&sessions).await
    }

    /// The claims of each candidate that verifies as an access or a refresh token.
    fn verifying<'a>(&'a self, candidates: &'a [&str]) -> impl Iterator<Item = Claims> + 'a {
        candidates.iter().filter_map(|token| {
            [TokenType::Access, TokenType::Refresh]
                .into_iter()
                .find_map(|typ| self.tokens.verify(token, typ).ok())
        })
    }

    /// The deserialize-user guard's work: a live access token of an existing user. One
    /// store round trip when this instance holds a current copy of the user.
    pub async fn authenticate(&self, token: &str) -> Result<(Arc<User>, Arc<Claims>)> {
        let claims = self
            .verified
            .get_or_verify(token, || self.tokens.verify(token, TokenType::Access))?;
        let check = self.sessions.check(&token_ref(&claims)).await?;
        if !check.live {
            return Err(gone(&claims));
        }
        let user = self.user_under(claims.sub, check.stamp).await?;
        let user = user.ok_or_else(|| gone(&claims))?;
        Ok((user, claims))
    }

    /// Call after a change to a user is committed: every instance reads the user again at
    /// its next request, so the change is served everywhere at once.
    pub async fn user_changed(&self, user: Uuid) -> Result<()> {
        self.sessions.user_changed(user).await
    }

    /// Changes the user's name and photo (what `change` gives), then announces the change.
    /// A change that gives nothing writes nothing and returns the user as stored.
    pub async fn update_profile(&self, user: Uuid, change: &ProfileChange) -> Result<User> {
        let (name, photo) = (change.name.as_deref(), change.photo.as_deref());
        let updated = self.users.update_profile(user, name, photo).await?;
        let mut updated = updated.ok_or_else(gone_user)?;
        if name.is_some() || photo.is_some() {
            self.user_changed(user).await?;
        }
        updated.password_hash.clear();
        Ok(updated)
    }

    /// Up to `limit` users, oldest first, from just after `after`, and where the next page
    /// starts, if there is one.
    pub async fn list_users(&self, after: Option<Cursor>, limit: u32) -> Result<UserPage> {
        let mut users = self.users.list(after, limit.saturating_add(1)).await?;
        let keep = usize::try_from(limit).unwrap_or(usize::MAX);
        let next = if users.len() > keep {
            users.truncate(keep);
            users.last().map(Cursor::after)
        } else {
            None
        };
        for user in &mut users {
            user.password_hash.clear();
        }
        Ok(UserPage { users, next })
    }

    /// Sets the role of the user with this email, then announces the change, so that every
    /// instance authorizes by the new role from its next request. `None`: no such user.
    pub async fn set_role(&self, email: &Email, role: Role) -> Result<Option<User>> {
        let Some(mut user) = self.users.set_role(email, role).await? else {
            return Ok(None);
        };
        self.user_changed(user.id).await?;
        user.password_hash.clear();
        Ok(Some(user))
    }

    /// Reads the user of a refresh token under a fresh stamp: the stamp it was read under
    /// (`None` where the store keeps none), and the user. A user that is gone ends the session.
    async fn check_user(&self, old: &Claims) -> Result<(Option<String>, Arc<User>)> {
        let stamp = self.sessions.stamp(old.sub).await?;
        let under = match &stamp {
            Stamp::Is(stamp) => Some(stamp.clone()),
            Stamp::Missing | Stamp::Unkept => None,
        };
        let Some(user) = self.user_under(old.sub, stamp).await? else {
            self.sessions.end(&[token_ref(old)]).await?;
            return Err(gone(old));
        };
        Ok((under, user))
    }

    /// The user as of `stamp`: the copy held under it, or read now and kept under it.
    async fn user_under(&self, id: Uuid, stamp: Stamp) -> Result<Option<Arc<User>>> {
        let stamp = match stamp {
            Stamp::Is(stamp) => stamp,
            // The stamp is set before the user is read: a change committed after this
            // read moves the stamp past the copy.
            Stamp::Missing => match self.sessions.stamp(id).await? {
                Stamp::Is(stamp) => stamp,
                _ => return self.read_user(id).await,
            },
            Stamp::Unkept => return self.read_user(id).await,
        };
        if let Some(user) = self.user_copies.get(id, &stamp) {
            return Ok(Some(user));
        }
        let user = self.users.by_id(id).await?;
        Ok(user.map(|user| self.user_copies.insert(&stamp, user)))
    }

    async fn read_user(&self, id: Uuid) -> Result<Option<Arc<User>>> {
        let user = self.users.by_id(id).await?;
        Ok(user.map(|mut user| {
            user.password_hash = String::new();
            Arc::new(user)
        }))
    }

    /// Each store in use, pinged at once. The embedded file holds users and sessions alike:
    /// it is named, and pinged, once.
    pub async fn check_stores(&self, within: Duration) -> Vec<StoreCheck> {
        let users = StoreCheck {
            name: self.users.name(),
            up: false,
        };
        if self.sessions.name() == users.name {
            let up = answers(self.sessions.ping(), within).await;
            return vec![StoreCheck { up, ..users }];
        }
        let (users_up, sessions_up) = tokio::join!(
            answers(self.users.ping(), within),
            answers(self.sessions.ping(), within)
        );
        vec![
            StoreCheck {
                up: users_up,
                ..users
            },
            StoreCheck {
                name: self.sessions.name(),
                up: sessions_up,
            },
        ]
    }

    fn sign_pair(&self, access: &Claims, refresh: &Claims) -> Result<SessionTokens> {
        Ok(SessionTokens {
            access: self.tokens.sign(access)?,
            refresh: self.tokens.sign(refresh)?,
        })
    }
}

async fn answers(check: impl Future<Output = Result<()>>, within: Duration) -> bool {
    matches!(tokio::time::timeout(within, check).await, Ok(Ok(())))
}
