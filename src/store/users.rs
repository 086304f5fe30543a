//! Users: Postgres in production, the SQLite file when embedded.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Email, NewUser, Role, User};
use crate::error::Result;
use crate::store::{postgres, sqlite};

/// A place in the list of users: just after the user created at `created_at` with `id`.
/// Users are listed by `(created_at, id)`, a total order, so a walk page by page meets each
/// user that exists throughout exactly once. Clients see it sealed (`service::cursor`).
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
