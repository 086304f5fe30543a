//! Accounts: register, change the profile or the password, delete the account. Each tells
//! the user by mail (`service::mail`).

use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Email, NewUser, User};
use crate::error::{AppError, Result};
use crate::service::core::{Core, gone_user};
use crate::service::mail::{Job, Kind};
use crate::store::users::{Changed, Inserted, UserStore};

/// Input already checked at the edge (trimmed, lowercased, lengths).
pub struct Registration {
    pub name: String,
    pub email: Email,
    pub password: String,
    pub photo: String,
}

/// A change of profile, already checked at the edge: `None` leaves that field as it is.
pub struct ProfileChange {
    pub name: Option<String>,
    pub photo: Option<String>,
}

/// A password change as the request asked it: the current password, the new one (already
/// checked against the rules), and the session to keep.
pub struct PasswordChange {
    pub current: String,
    pub new: String,
    /// With a second factor: its code.
    pub code: Option<String>,
    pub keep: Uuid,
}

/// What register answers.
pub enum Registered {
    Created(User),
    /// `REQUIRE_VERIFIED_EMAIL`: the same for a new and a taken address.
    Pending,
}

pub struct AccountFlows {
    core: Arc<Core>,
}

impl AccountFlows {
    pub(super) fn new(core: Arc<Core>) -> Self {
        AccountFlows { core }
    }

    /// Creates the user and sends them a verification link. With `REQUIRE_VERIFIED_EMAIL`,
    /// a taken address is no error: its owner is told, and the caller answers as for a new
    /// one (`Registered::Pending`), so register tells no one who has an account.
    pub async fn register(&self, input: Registration) -> Result<Registered> {
        let core = &self.core;
        let password_hash = core.passwords.hash(input.password).await?;
        let new = NewUser {
            name: input.name,
            email: input.email,
            password_hash,
            photo: input.photo,
        };
        match core.stores.users.insert(&new).await? {
            Inserted::Created(user) => {
                core.mail.welcome(&user).await?;
                Ok(if core.mail.require_verified {
                    Registered::Pending
                } else {
                    Registered::Created(user.without_hash())
                })
            }
            Inserted::EmailTaken if core.mail.require_verified => {
                core.mail.submit(Job::SignupAttempt { email: new.email });
                Ok(Registered::Pending)
            }
            Inserted::EmailTaken => Err(AppError::EmailTaken),
        }
    }

    /// Changes the user's name and photo (what `change` gives), then announces the change.
    /// A change that gives nothing writes nothing and returns the user as stored.
    pub async fn update_profile(&self, user: Uuid, change: &ProfileChange) -> Result<User> {
        let users = &self.core.stores.users;
        let (name, photo) = (change.name.as_deref(), change.photo.as_deref());
        let updated = if name.is_none() && photo.is_none() {
            users.by_id(user).await?
        } else {
            let updated = users.update_profile(user, name, photo).await?;
            self.core.user_changed(user).await?;
            updated
        };
        Ok(updated.ok_or_else(gone_user)?.without_hash())
    }

    /// Replaces the password of `user` after checking the current one (and the code, with a
    /// second factor), and ends every other
    /// session of theirs: a thief's session dies, the one that changed it goes on.
    pub async fn change_password(
        &self,
        user: &User,
        change: PasswordChange,
        ip: Option<IpAddr>,
    ) -> Result<()> {
        let core = &self.core;
        let email = Email::normalize(&user.email);
        let checked = core.check_password(&email, change.current, ip).await?;
        core.step_up(&checked, change.code.as_deref(), ip).await?;
        let hash = core.passwords.hash(change.new).await?;
        if core.stores.users.set_password(user.id, &hash).await? == Changed::NoSuchUser {
            return Err(gone_user());
        }
        // Before the sessions: the notice must not depend on Redis answering.
        core.mail.notice(Kind::PasswordChanged, &user.email).await?;
        // The stamp before the sweep: a login that checked the old password and writes its
        // session after the sweep finds the stamp moved (see `SessionFlows::login`).
        core.sweep(user.id, Some(change.keep)).await
    }

    /// Deletes `user` after checking their password (and code, with a second factor), and
    /// ends all of their sessions.
    pub async fn delete(
        &self,
        user: &User,
        password: String,
        code: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<()> {
        let core = &self.core;
        let email = Email::normalize(&user.email);
        let checked = core.check_password(&email, password, ip).await?;
        core.step_up(&checked, code, ip).await?;
        // The user first: should ending the sessions fail, their tokens already find no
        // user and answer session_revoked. The stamp before the sweep, as for a password.
        if core.stores.users.delete(user.id).await? == Changed::NoSuchUser {
            return Err(gone_user());
        }
        core.mail.notice(Kind::AccountDeleted, &user.email).await?;
        core.sweep(user.id, None).await
    }
}
