//! Users in Postgres.

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{NewUser, User};
use crate::error::Result;

#[derive(Clone)]
pub struct UserStore {
    pool: PgPool,
}

impl UserStore {
    pub fn new(pool: PgPool) -> Self {
        UserStore { pool }
    }

    /// Inserts the user, or returns `None` when the email is taken. The unique index decides,
    /// so concurrent registrations of one email cannot both succeed.
    pub async fn insert(&self, new: &NewUser) -> Result<Option<User>> {
        let user = sqlx::query_as!(
            User,
            r#"INSERT INTO users (name, email, password_hash, photo)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING
               RETURNING id, name, email, password_hash, role, photo, verified, provider,
                         created_at, updated_at"#,
            new.name,
            new.email,
            new.password_hash,
            new.photo,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(user)
    }

    /// `email` must already be normalized (trimmed, lowercased).
    pub async fn by_email(&self, email: &str) -> Result<Option<User>> {
        let user = sqlx::query_as!(
            User,
            r#"SELECT id, name, email, password_hash, role, photo, verified, provider,
                      created_at, updated_at
               FROM users WHERE lower(email) = $1"#,
            email,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(user)
    }

    pub async fn by_id(&self, id: Uuid) -> Result<Option<User>> {
        let user = sqlx::query_as!(
            User,
            r#"SELECT id, name, email, password_hash, role, photo, verified, provider,
                      created_at, updated_at
               FROM users WHERE id = $1"#,
            id,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(user)
    }

    pub async fn exists(&self, id: Uuid) -> Result<bool> {
        let found = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) AS "found!""#,
            id
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(found)
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
