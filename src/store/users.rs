//! Users: the contract every backend keeps, and its value types.

use chrono::{DateTime, Utc};
use enum_dispatch::enum_dispatch;
use uuid::Uuid;

use crate::domain::{Email, NewUser, Role, User};
use crate::store::error::Result;

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

/// What came of inserting a user.
#[derive(Debug)]
pub enum Inserted {
    Created(User),
    /// Another user has this email (the unique index decided, so concurrent registrations of
    /// one email cannot both succeed): nothing was written.
    EmailTaken,
}

/// What came of a change to a user that answers nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Done,
    NoSuchUser,
}

impl Changed {
    /// From the rows a statement on one user's row changed.
    pub fn from_rows(rows: u64) -> Self {
        if rows == 1 {
            Changed::Done
        } else {
            Changed::NoSuchUser
        }
    }
}

/// The users: Postgres in production, the SQLite file when embedded. Every change advances
/// `updated_at`, strictly.
#[enum_dispatch]
#[allow(async_fn_in_trait)] // Only ever called on the concrete enum, never through `dyn`.
pub trait UserStore {
    /// For the healthchecker: which store holds the users.
    fn name(&self) -> &'static str;

    async fn insert(&self, new: &NewUser) -> Result<Inserted>;

    async fn by_email(&self, email: &Email) -> Result<Option<User>>;

    async fn by_id(&self, id: Uuid) -> Result<Option<User>>;

    /// Replaces the password hash.
    async fn set_password(&self, id: Uuid, hash: &str) -> Result<Changed>;

    /// Changes what is given of the name and photo (already checked; at least one is given);
    /// `None` if the user is gone.
    async fn update_profile(
        &self,
        id: Uuid,
        name: Option<&str>,
        photo: Option<&str>,
    ) -> Result<Option<User>>;

    /// Deletes the user. Their sessions are the session store's.
    async fn delete(&self, id: Uuid) -> Result<Changed>;

    /// Sets the role of the user with this email; `None` if there is no such user.
    async fn set_role(&self, email: &Email, role: Role) -> Result<Option<User>>;

    /// Up to `limit` users, oldest first, from just after `after` (from the first without).
    async fn list(&self, after: Option<Cursor>, limit: u32) -> Result<Vec<User>>;

    async fn ping(&self) -> Result<()>;
}
