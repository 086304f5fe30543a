//! The messages: one kind per event, each with a plain-text and an HTML part. Links are built
//! from `APP_URL` only, never from a request.

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

/// Where plain text is wrapped.
const WRAP_AT: usize = 72;
/// RFC 5322's limit on a line.
const MAX_LINE: usize = 998;

/// Every message the service sends. Its name travels in the `X-Mail-Kind` header, the
/// outbox, the logs and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    VerifyEmail,
    ResetPassword,
    ConfirmEmail,
    /// Register with an address that has an account (`REQUIRE_VERIFIED_EMAIL`): a reset link.
    SignupAttempt,
    /// An address change to an address that has an account: told to that address.
    AddressTaken,
    PasswordChanged,
    /// To the old address, once the change is confirmed.
    EmailChanged,
    AccountDeleted,
    /// A second factor was turned on.
    MfaOn,
    /// The second factor was turned off.
    MfaOff,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::VerifyEmail,
        Kind::ResetPassword,
        Kind::ConfirmEmail,
        Kind::SignupAttempt,
        Kind::AddressTaken,
        Kind::PasswordChanged,
        Kind::EmailChanged,
        Kind::AccountDeleted,
        Kind::MfaOn,
        Kind::MfaOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::VerifyEmail => "verify_email",
            Kind::ResetPassword => "reset_password",
            Kind::ConfirmEmail => "confirm_email",
            Kind::SignupAttempt => "signup_attempt",
            Kind::AddressTaken => "address_taken",
            Kind::PasswordChanged => "password_changed",
            Kind::EmailChanged => "email_changed",
            Kind::AccountDeleted => "account_deleted",
            Kind::MfaOn => "mfa_on",
            Kind::MfaOff => "mfa_off",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The SPA page a link of this kind opens.
    fn page(self) -> Option<&'static str> {
        match self {
            Kind::VerifyEmail => Some("verify-email"),
            Kind::ResetPassword | Kind::SignupAttempt => Some("reset-password"),
            Kind::ConfirmEmail => Some("confirm-email"),
            _ => None,
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Kind::VerifyEmail => "Confirm your email address",
            Kind::ResetPassword => "Reset your password",
            Kind::ConfirmEmail => "Confirm your new email address",
            Kind::SignupAttempt => "Someone tried to sign up with your email address",
            Kind::AddressTaken => "Someone tried to move an account to your email address",
            Kind::PasswordChanged => "Your password was changed",
            Kind::EmailChanged => "Your account's email address was changed",
            Kind::AccountDeleted => "Your account was deleted",
            Kind::MfaOn => "Two-factor sign-in is on",
            Kind::MfaOff => "Two-factor sign-in was turned off",
        }
    }

    /// The paragraphs before the link (if the kind has one) and after it.
    fn text(self) -> (&'static str, &'static str) {
        const NOT_YOU: &str = "If this was not you, someone may know your password: reset it \
                               with \"Forgot password?\" on the sign-in page.";
        match self {
            Kind::VerifyEmail => (
                "Confirm that this address is yours: open the link below and press the button on the page.",
                "The link works once and for a limited time. If you did not create an account, ignore this mail.",
            ),
            Kind::ResetPassword => (
                "Someone, hopefully you, asked to reset the password of the account with this address. To choose a new password, open the link below.",
                "The link works once and for a limited time. If you did not ask for it, ignore this mail: your password stays as it is.",
            ),
            Kind::ConfirmEmail => (
                "Someone, hopefully you, asked to move an account to this address. To confirm, open the link below and press the button on the page.",
                "The link works once and for a limited time. If you did not ask for it, ignore this mail.",
            ),
            Kind::SignupAttempt => (
                "Someone tried to create an account with this address, which already has one. If it was you and you forgot your password, you can choose a new one here:",
                "The link works once and for a limited time. If it was not you, ignore this mail: nothing has changed.",
            ),
            Kind::AddressTaken => (
                "Someone tried to move another account to this address, which already has an account. Nothing has changed.",
                "If it was you, sign in to the account that has this address instead.",
            ),
            Kind::PasswordChanged => (
                "The password of your account was changed, and the sessions signed in with the old one were ended.",
                NOT_YOU,
            ),
            Kind::EmailChanged => (
                "Your account no longer uses this address: it was moved to a new one, confirmed from that mailbox.",
                NOT_YOU,
            ),
            Kind::AccountDeleted => (
                "Your account and its sessions were deleted.",
                "If this was not you, someone knew your password; you can register again with this address.",
            ),
            Kind::MfaOn => (
                "Signing in to your account now takes a code from your authenticator app, or one of your recovery codes. Every other session was ended.",
                NOT_YOU,
            ),
            Kind::MfaOff => (
                "Signing in to your account no longer asks for a code from an authenticator app.",
                NOT_YOU,
            ),
        }
    }
}

/// `a***@example.com`: enough for an operator to tell messages apart, not to read an address.
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// The `X-Mail-Kind` header: lets a client or a test sort messages without reading them.
#[derive(Clone)]
struct MailKind(&'static str);

impl lettre::message::header::Header for MailKind {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Mail-Kind")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Kind::parse(s)
            .map(|k| MailKind(k.as_str()))
            .ok_or_else(|| "unknown kind".into())
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.to_owned())
    }
}

/// The message of `kind` to `to`, with the link of `token` if the kind has one. Its
/// `Message-ID` comes from the outbox row `id`, so a message sent twice (a sender that died
/// between the server's acceptance and the outbox update) is one message to a mail client.
pub fn build(
    kind: Kind,
    id: uuid::Uuid,
    from: &Mailbox,
    to: &str,
    token: Option<&str>,
    app_url: &str,
) -> Result<Message, String> {
    let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
    let link = match (kind.page(), token) {
        (Some(page), Some(token)) => Some(format!("{app_url}/{page}?token={token}")),
        (None, None) => None,
        _ => return Err(format!("a {} message without its link", kind.as_str())),
    };
    let (before, after) = kind.text();
    let mut text = format!("Hello,\n\n{}\n\n", wrap(before));
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Hello,</p><p>{}</p>",
        escape(before)
    );
    if let Some(link) = &link {
        text.push_str(&format!("{link}\n\n"));
        html.push_str(&format!("<p><a href=\"{0}\">{0}</a></p>", escape(link)));
    }
    text.push_str(&format!("{}\n", wrap(after)));
    html.push_str(&format!("<p>{}</p></body></html>", escape(after)));
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(kind.subject())
        .message_id(Some(format!("<{}@rs256-auth>", id.simple())))
        .header(MailKind(kind.as_str()))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(plain_body(text)),
                )
                .singlepart(SinglePart::html(html)),
        )
        .map_err(|e| format!("message: {e}"))
}

/// The text part as it is (7bit) when it can be: the link stays whole on its line, for a
/// person reading a `.eml` file or a script looking for `token=`. Quoted-printable, which a
/// longer line would get, breaks it with soft line breaks.
fn plain_body(text: String) -> Body {
    if text.is_ascii() && text.lines().all(|line| line.len() <= MAX_LINE) {
        Body::dangerous_pre_encoded(
            text.replace('\n', "\r\n").into_bytes(),
            ContentTransferEncoding::SevenBit,
        )
    } else {
        Body::new(text)
    }
}

/// The words of `paragraph`, in lines of at most `WRAP_AT` characters where words allow.
fn wrap(paragraph: &str) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in paragraph.split_whitespace() {
        if line_len > 0 && line_len + 1 + word.len() > WRAP_AT {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> Mailbox {
        "rs256-auth <no-reply@localhost>".parse().unwrap()
    }

    #[test]
    fn kinds_parse_back_from_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("other"), None);
    }

    #[test]
    fn a_link_message_has_both_parts_the_link_and_its_kind() {
        let message = build(
            Kind::ResetPassword,
            uuid::Uuid::nil(),
            &from(),
            "ada@example.com",
            Some("T0K3N"),
            "https://app.example.com",
        )
        .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("X-Mail-Kind: reset_password"), "{raw}");
        assert!(raw.contains("Message-ID: <00000000000000000000000000000000@rs256-auth>"));
        assert!(
            raw.contains("text/plain") && raw.contains("text/html"),
            "{raw}"
        );
        let link = "\r\nhttps://app.example.com/reset-password?token=T0K3N\r\n";
        assert!(
            raw.contains(link),
            "the link whole on a line of its own: {raw}"
        );
    }

    #[test]
    fn a_link_kind_needs_its_token_and_a_notice_takes_none() {
        let app = "https://app.example.com";
        let id = uuid::Uuid::nil();
        assert!(build(Kind::VerifyEmail, id, &from(), "a@b.c", None, app).is_err());
        assert!(build(Kind::PasswordChanged, id, &from(), "a@b.c", Some("t"), app).is_err());
        assert!(build(Kind::PasswordChanged, id, &from(), "a@b.c", None, app).is_ok());
    }

    #[test]
    fn masked_addresses_keep_one_letter_and_the_domain() {
        assert_eq!(mask("ada@example.com"), "a***@example.com");
        assert_eq!(mask("nonsense"), "***");
    }
}
