//! The user as stored, and the view of it that clients may see.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::ValidationError;

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
    /// A confirmed second factor is on.
    pub mfa: bool,
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
    /// A second factor (an authenticator app) is on: login asks for a code.
    pub mfa: bool,
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
            mfa: self.mfa,
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
    /// The user as the flows hand it on: the hash stays with the password check, so no copy,
    /// cache or answer can carry it.
    pub fn without_hash(mut self) -> Self {
        self.password_hash = String::new();
        self
    }

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

/// Names: 1 to this many characters, after trimming.
pub const NAME_MAX_CHARS: u64 = 100;
/// Photos: at most this many characters.
pub const PHOTO_MAX_CHARS: u64 = 255;
/// Passwords: this many characters at least, and at most (every character counts: no
/// trimming, no truncation). Login refuses a longer one without hashing it.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// The length rule of a name (already trimmed), for validator's `custom`: register and a
/// profile change.
pub fn name_length_rule<T: AsRef<str> + ?Sized>(name: &T) -> Result<(), ValidationError> {
    let chars = name.as_ref().chars().count() as u64;
    if (1..=NAME_MAX_CHARS).contains(&chars) {
        return Ok(());
    }
    let rule = format!("must be 1 to {NAME_MAX_CHARS} characters");
    Err(ValidationError::new("length").with_message(rule.into()))
}

/// The length rule of a photo, for validator's `custom`: register and a profile change.
pub fn photo_length_rule<T: AsRef<str> + ?Sized>(photo: &T) -> Result<(), ValidationError> {
    if photo.as_ref().chars().count() as u64 <= PHOTO_MAX_CHARS {
        return Ok(());
    }
    let rule = format!("must be at most {PHOTO_MAX_CHARS} characters");
    Err(ValidationError::new("length").with_message(rule.into()))
}

/// The password rule, for validator's `custom`: register's `password` and a password
/// change's `newPassword`.
pub fn password_rule<T: AsRef<str> + ?Sized>(password: &T) -> Result<(), ValidationError> {
    let chars = password.as_ref().chars().count();
    if (PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        return Ok(());
    }
    let rule = format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters");
    Err(ValidationError::new("length").with_message(rule.into()))
}

/// A name as sent may hold no control character (a tab or a newline included, even at an
/// end) and no Unicode bidi override or isolate, which can make a name display as another
/// (U+202A..U+202E, U+2066..U+2069). Register and a profile change both apply this.
pub fn name_is_clean(sent: &str) -> bool {
    !sent
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

/// A photo is a file name or a relative path, or an `http://`/`https://` URL: nothing that a
/// page showing it would run or read locally (`javascript:`, `data:`, `file:`), and no
/// scheme-relative `//host` or `\\host`, which a browser and a reader of the stored value
/// would take for a path and a host differently. A control character is refused anywhere,
/// since browsers drop tabs and newlines inside URLs (`java\tscript:`). The scheme is read
/// as browsers read it, after the surrounding whitespace and case-insensitively.
pub fn photo_is_allowed(sent: &str) -> bool {
    if sent.chars().any(char::is_control) {
        return false;
    }
    let photo = sent.trim();
    let mut chars = photo.chars();
    let slash = |c: Option<char>| matches!(c, Some('/' | '\\'));
    if slash(chars.next()) && slash(chars.next()) {
        return false;
    }
    let Some(end) = photo.find([':', '/', '\\', '?', '#']) else {
        return true;
    };
    let (scheme, rest) = photo.split_at(end);
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !rest.starts_with(':') || !is_scheme {
        return true;
    }
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && rest.starts_with("://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_control_characters_and_bidi_overrides_anywhere() {
        for good in ["Ada", "Ada Lovelace", "Zoë 李", "a\u{200D}b", "\u{A0}Ada"] {
            assert!(name_is_clean(good), "{good:?}");
        }
        for bad in [
            "A\u{0}",
            "Ada\n",
            "\tAda",
            "A\u{7F}",
            "A\u{85}",
            "A\u{9F}",
            "\u{202A}Ada",
            "Ad\u{202E}a",
            "\u{2066}Ada",
            "Ada\u{2069}",
        ] {
            assert!(!name_is_clean(bad), "{bad:?}");
        }
    }

    #[test]
    fn photos_are_file_names_relative_paths_or_http_urls() {
        for good in [
            "default.png",
            "me.jpg",
            "img/me.png",
            "/img/me.png",
            "./me.png",
            "../me.png",
            "img/a:b.png",
            "my photo:1.png",
            "1:2.png",
            "me.png?v=2#x",
            "http://example.com/me.png",
            "HTTPS://example.com/me.png",
            "  https://example.com/me.png ",
            "",
        ] {
            assert!(photo_is_allowed(good), "{good:?}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "\u{A0}javascript:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            "data:image/png;base64,AAAA",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "blob:https://example.com/x",
            "mailto:a@b.c",
            "x:y",
            "//evil.example/me.png",
            " //evil.example/me.png",
            "\\\\evil.example/me.png",
            "/\\evil.example/me.png",
            "\\/evil.example/me.png",
            "http:evil.example",
            "https:/evil.example",
            "p\u{0}.png",
        ] {
            assert!(!photo_is_allowed(bad), "{bad:?}");
        }
    }
}
