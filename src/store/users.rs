//! Users: Postgres in production, the SQLite file when embedded.

use uuid::Uuid;

use crate::domain::{Email, NewUser, User};
use crate::error::Result;
use crate::store::{postgres, sqlite};

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

    pub async fn ping(&self) -> Result<()> {
        match self {
            UserStore::Postgres(s) => s.ping().await,
            UserStore::Sqlite(s) => s.ping().await,
        }
    }
}
