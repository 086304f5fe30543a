//! The user as stored, and the view of it that clients may see.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A row of `users`. Holds the password hash, so it is never serialized, and `Debug`
/// leaves the hash out of any log line.
#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub photo: String,
    pub verified: bool,
    pub provider: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The user object of docs/api.md: exactly these fields, never the password hash or a token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView<'a> {
    /// The `sub` of the user's tokens.
    pub id: Uuid,
    /// As registered, trimmed.
    #[schema(example = "Ada")]
    pub name: &'a str,
    /// Trimmed and lowercased.
    #[schema(format = "email", example = "ada@example.com")]
    pub email: &'a str,
    /// `user` or `admin`; `user` for every account created by register.
    #[schema(example = "user")]
    pub role: &'a str,
    /// As given at register, or `default.png`.
    #[schema(example = "default.png")]
    pub photo: &'a str,
    /// `false`: the service sends no verification mail.
    pub verified: bool,
    /// `local`.
    #[schema(example = "local")]
    pub provider: &'a str,
    /// RFC 3339, UTC, to the microsecond.
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub fn view(&self) -> UserView<'_> {
        UserView {
            id: self.id,
            name: &self.name,
            email: &self.email,
            role: &self.role,
            photo: &self.photo,
            verified: self.verified,
            provider: &self.provider,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// What a user may do. Stored as its name (`user`, `admin`); anything else that a hand edit
/// could leave in the column counts as `user`: the least privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    /// `user` or `admin`, exactly; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl User {
    /// The stored role, as authorization reads it.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::User)
    }
}

/// What registration stores: already trimmed, lowercased, checked and hashed.
#[derive(Debug)]
pub struct NewUser {
    pub name: String,
    pub email: Email,
    pub password_hash: String,
    pub photo: String,
}

/// An email as it is stored and compared: trimmed and lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn normalize(raw: &str) -> Self {
        Email(raw.trim().to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
