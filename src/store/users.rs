//! Users: Postgres in production, the SQLite file when embedded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Email, NewUser, Role, User};
use crate::error::Result;
use crate::store::{postgres, sqlite};

/// A place in the list of users: just after the user created at `created_at` with `id`.
/// Users are listed by `(created_at, id)`, a total order, so a walk page by page meets each
/// user that exists throughout exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// The place just after `user`.
    pub fn after(user: &User) -> Self {
        Cursor {
            created_at: user.created_at,
            id: user.id,
        }
    }

    /// Opaque text for clients: base64url of the creation instant (Unix microseconds, 8 bytes
    /// big-endian) and the id (16 bytes).
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&self.created_at.timestamp_micros().to_be_bytes());
        bytes[8..].copy_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// What `encode` wrote, or `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes: [u8; 24] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        let micros = i64::from_be_bytes(bytes[..8].try_into().ok()?);
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros)?,
            id: Uuid::from_slice(&bytes[8..]).ok()?,
        })
    }
}

pub enum UserStore {
    Postgres(postgres::Users),
    Sqlite(sqlite::users::Users),
}

impl UserStore {
    /// For the healthchecker: which store holds the users.
    pub fn name(&self) -> &'static str {
        match self {
            UserStore::Postgres(_) => "postgres",
            UserStore::Sqlite(_) => "sqlite",
        }
    }

    /// Inserts the user, or returns `None` when the email is taken. The unique index decides,
    /// so concurrent registrations of one email cannot both succeed.
    pub async fn insert(&self, new: &NewUser) -> Result<Option<User>> {
        match self {
            UserStore::Postgres(s) => s.insert(new).await,
            UserStore::Sqlite(s) => s.insert(new).await,
        }
    }

    pub async fn by_email(&self, email: &Email) -> Result<Option<User>> {
        match self {
            UserStore::Postgres(s) => s.by_email(email).await,
            UserStore::Sqlite(s) => s.by_email(email).await,
        }
    }

    pub async fn by_id(&self, id: Uuid) -> Result<Option<User>> {
        match self {
            UserStore::Postgres(s) => s.by_id(id).await,
            UserStore::Sqlite(s) => s.by_id(id).await,
        }
    }

    /// Replaces the password hash; false if the user is gone.
    pub async fn set_password(&self, id: Uuid, hash: &str) -> Result<bool> {
        match self {
            UserStore::Postgres(s) => s.set_password(id, hash).await,
            UserStore::Sqlite(s) => s.set_password(id, hash).await,
        }
    }

    /// Changes what is given of the name and photo (already checked) and advances
    /// `updated_at`, strictly; `None` if the user is gone. With nothing given, nothing is
    /// written: the user is returned as stored.
    pub async fn update_profile(
        &self,
        id: Uuid,
        name: Option<&str>,
        photo: Option<&str>,
    ) -> Result<Option<User>> {
        if name.is_none() && photo.is_none() {
            return self.by_id(id).await;
        }
        match self {
            UserStore::Postgres(s) => s.update_profile(id, name, photo).await,
            UserStore::Sqlite(s) => s.update_profile(id, name, photo).await,
        }
    }

    /// Deletes the user; false if there was none. Their sessions are the session store's.
    pub async fn delete(&self, id: Uuid) -> Result<bool> {
        match self {
            UserStore::Postgres(s) => s.delete(id).await,
            UserStore::Sqlite(s) => s.delete(id).await,
        }
    }

    /// Sets the role of the user with this email (and advances `updated_at`); `None` if
    /// there is no such user.
    pub async fn set_role(&self, email: &Email, role: Role) -> Result<Option<User>> {
        match self {
            UserStore::Postgres(s) => s.set_role(email, role).await,
            UserStore::Sqlite(s) => s.set_role(email, role).await,
        }
    }

    /// Up to `limit` users, oldest first, from just after `after` (from the first without).
    pub async fn list(&self, after: Option<Cursor>, limit: u32) -> Result<Vec<User>> {
        match self {
            UserStore::Postgres(s) => s.list(after, limit).await,
            UserStore::Sqlite(s) => s.list(after, limit).await,
        }
    }

    pub async fn ping(&self) -> Result<()> {
        match self {
            UserStore::Postgres(s) => s.ping().await,
            UserStore::Sqlite(s) => s.ping().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_nothing_else() {
        for micros in [
            0,
            1_764_633_230_123_456,
            -1,
            i64::from(i32::MAX) * 1_000_000,
        ] {
            let cursor = Cursor {
                created_at: DateTime::from_timestamp_micros(micros).unwrap(),
                id: Uuid::new_v4(),
            };
            let text = cursor.encode();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            );
            assert_eq!(Cursor::decode(&text), Some(cursor));
            assert_eq!(Cursor::decode(&text[1..]), None);
            assert_eq!(Cursor::decode(&format!("{text}AA")), None);
        }
        assert_eq!(Cursor::decode(""), None);
        assert_eq!(Cursor::decode("not a cursor"), None);
        // An instant chrono cannot hold.
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&i64::MAX.to_be_bytes());
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(bytes)), None);
    }
}
