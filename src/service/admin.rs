//! What only admins (and the `users set-role` command) do: list the users, set a role.

use std::sync::Arc;

use crate::domain::{Email, Role, User};
use crate::error::{AppError, Result};
use crate::store::Stores;
use crate::store::sessions::SessionStore;
use crate::store::users::{Cursor, UserStore};

/// A page of the list of users, and where the next page starts (`None`: this is the last).
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<Cursor>,
}

/// Why a role was not set, and whether anything changed.
#[derive(Debug)]
pub enum RoleError {
    /// Nothing changed: the stores could not be reached or written.
    Unchanged(AppError),
    /// The role is set, but running instances could not be told: they serve their copy of
    /// the user for up to a minute.
    Unannounced { user: User, error: AppError },
}

/// Needs only the stores, so that the command line can use it without keys or argon2.
pub struct AdminFlows {
    stores: Arc<Stores>,
}

impl AdminFlows {
    pub fn new(stores: Arc<Stores>) -> Self {
        AdminFlows { stores }
    }

    /// Up to `limit` users, oldest first, from just after `after`, and where the next page
    /// starts, if there is one.
    pub async fn list_users(&self, after: Option<Cursor>, limit: u32) -> Result<UserPage> {
        let users = self
            .stores
            .users
            .list(after, limit.saturating_add(1))
            .await?;
        let mut users: Vec<User> = users.into_iter().map(User::without_hash).collect();
        let keep = usize::try_from(limit).unwrap_or(usize::MAX);
        let next = if users.len() > keep {
            users.truncate(keep);
            users.last().map(Cursor::after)
        } else {
            None
        };
        Ok(UserPage { users, next })
    }

    /// Sets the role of the user with this email, then announces the change, so that every
    /// instance authorizes by the new role from its next request. `None`: no such user. The
    /// session store is asked first: a role no instance can be told of is not written.
    pub async fn set_role(&self, email: &Email, role: Role) -> Result<Option<User>, RoleError> {
        let unchanged = |e: crate::store::StoreError| RoleError::Unchanged(e.into());
        self.stores.sessions.ping().await.map_err(unchanged)?;
        let user = self.stores.users.set_role(email, role).await;
        let Some(user) = user.map_err(unchanged)? else {
            return Ok(None);
        };
        let user = user.without_hash();
        match self.stores.sessions.user_changed(user.id).await {
            Ok(()) => Ok(Some(user)),
            Err(e) => Err(RoleError::Unannounced {
                user,
                error: e.into(),
            }),
        }
    }
}
