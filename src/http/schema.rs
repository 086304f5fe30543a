//! The shapes of the API for its OpenAPI description: the JSON bodies (requests and answers)
//! and the error answers that several routes share. The handlers name these in their
//! `#[utoipa::path]` attributes, and `openapi.rs` gathers the handlers; this module imports
//! neither.
//!
//! Most types here only describe JSON: the handlers build their answers with `json!` and read
//! request bodies field by field (see body.rs), so these are never built (hence
//! `dead_code`). `SessionView` is the exception: the sessions list serializes it.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};
use uuid::Uuid;

use crate::domain::UserView;
use crate::error::{ErrorCode, FieldError};

// The descriptions of the error answers that several routes share.
const AMBIGUOUS: &str = "`validation_failed`: an ambiguous request: more than one \
`Authorization` header, or more than one `access_token` or `refresh_token` cookie.";
const NO_LIVE_TOKEN: &str = "`not_logged_in` (no token), `token_invalid`, `token_expired` \
(refresh, then retry) or `session_revoked` (the session ended, or the user was deleted: log in \
again).";
const CROSS_SITE: &str = "`origin_forbidden`: sent by a browser on behalf of another site \
(an `Origin` that is neither in `CLIENT_ORIGIN` nor this service's own, `Origin: null`, or \
`Sec-Fetch-Site: cross-site` without `Origin`).";
const TOO_LARGE: &str = "`payload_too_large`: a body over 64 KiB, chunked or not.";
const NOT_JSON: &str = "`unsupported_media_type`: no `Content-Type: application/json`.";
const LOGIN_LIMITS: &str = "`rate_limited`: the login limits of this email or IP.";
const IP_LIMIT: &str = "`rate_limited`: the client IP's failed-login limit \
(`LOGIN_ATTEMPTS_IP_LIMIT` within `LOGIN_ATTEMPTS_WINDOW`), which every request for a mail and \
every refused link counts against.";
const LINK_REFUSED: &str = "`link_invalid`: the token is unknown, used, expired, superseded by a \
newer link, or its account changed since (the password, or the address); or \
`validation_failed`: the body is not one JSON object, `token` is missing, not a string, or \
not 1 to 100 characters, or an ambiguous request.";
/// The 500 of every route that can fail inside; also for a route whose 503 says more.
pub const INTERNAL: &str = "`internal_error`: a defect; the cause is logged on the server \
with the request id.";
const UNAVAILABLE: &str = "`service_unavailable`: a store (Postgres, Redis or the SQLite \
file) cannot be reached or written in time, or a password hash waited over 10 s for its \
turn. Retry later; no cookie is changed.";

// Shared error answers, to list in `responses(...)` beside a route's own. Each is the `Error`
// envelope with the codes its description names. A route lists one only for statuses it does
// not describe itself: of two entries for one status, the later wins.

/// 400 for an ambiguous request: every route has it (see `refuse_ambiguous`), but a route
/// whose 400 has more causes describes its own.
#[derive(IntoResponses)]
pub enum Ambiguous {
    #[response(status = 400, description = AMBIGUOUS)]
    Ambiguous(Error),
}

/// 401 of a route behind the `AuthUser` guard, whose only 401 is a missing or dead token.
#[derive(IntoResponses)]
pub enum NoLiveToken {
    #[response(status = 401, description = NO_LIVE_TOKEN,
        headers(("WWW-Authenticate" = String, description = "`Bearer` for `not_logged_in`, \
            `Bearer error=\"invalid_token\"` for the others.")))]
    NoLiveToken(Error),
}

/// 403 of the routes behind `same_site_only`.
#[derive(IntoResponses)]
pub enum CrossSite {
    #[response(status = 403, description = CROSS_SITE)]
    CrossSite(Error),
}

/// 413 and 415 of the routes that read a JSON body.
#[derive(IntoResponses)]
pub enum BodyRefused {
    #[response(status = 413, description = TOO_LARGE)]
    TooLarge(Error),
    #[response(status = 415, description = NOT_JSON)]
    NotJson(Error),
}

/// 429 of the routes that check the password of a logged-in user (the login limits).
#[derive(IntoResponses)]
pub enum LoginLimits {
    #[response(status = 429, description = LOGIN_LIMITS,
        headers(("Retry-After" = u64, description = "Whole seconds left in the window.")))]
    RateLimited(Error),
}

/// 429 of the mail routes: the client IP's failed-login counter.
#[derive(IntoResponses)]
pub enum IpLimit {
    #[response(status = 429, description = IP_LIMIT,
        headers(("Retry-After" = u64, description = "Whole seconds left in the window.")))]
    RateLimited(Error),
}

/// 400 of the routes that take a link's token.
#[derive(IntoResponses)]
pub enum LinkRefused {
    #[response(status = 400, description = LINK_REFUSED)]
    LinkRefused(Error),
}

/// 500 and 503 of the routes that use a store.
#[derive(IntoResponses)]
pub enum ServerErrors {
    #[response(status = 500, description = INTERNAL)]
    Internal(Error),
    #[response(status = 503, description = UNAVAILABLE)]
    Unavailable(Error),
}

/// `"success"`
#[derive(ToSchema)]
pub enum SuccessStatus {
    #[serde(rename = "success")]
    Success,
}

/// `"fail"`
#[derive(ToSchema)]
pub enum FailStatus {
    #[serde(rename = "fail")]
    Fail,
}

/// The failure envelope of every 4xx and 5xx answer.
#[derive(ToSchema)]
#[schema(example = json!({"status": "fail", "code": "validation_failed", "message": "the request is invalid", "errors": [{"field": "passwordConfirm", "message": "must match password"}]}))]
pub struct Error {
    #[schema(inline)]
    status: FailStatus,
    code: ErrorCode,
    /// For people; may be reworded.
    #[schema(example = "invalid email or password")]
    message: String,
    /// Only with `validation_failed`: one entry per bad field, named as in the JSON body
    /// (`body` for the body as a whole, `Authorization` or a cookie's name for an ambiguous
    /// request).
    #[schema(nullable = false)]
    errors: Option<Vec<FieldError>>,
}

/// A success without fields.
#[derive(ToSchema)]
pub struct Success {
    #[schema(inline)]
    status: SuccessStatus,
}

/// A store's state.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreState {
    Up,
    Down,
}

/// The stores of the configured storage mode: `postgres` and `redis`, `sqlite`, or
/// `sqlite` and `redis`.
#[derive(ToSchema)]
pub struct Checks {
    #[schema(nullable = false)]
    postgres: Option<StoreState>,
    #[schema(nullable = false)]
    redis: Option<StoreState>,
    #[schema(nullable = false)]
    sqlite: Option<StoreState>,
}

/// Every store in use answered.
#[derive(ToSchema)]
#[schema(example = json!({"status": "success", "message": "rs256-auth is up", "checks": {"sqlite": "up"}}))]
pub struct Health {
    #[schema(inline)]
    status: SuccessStatus,
    message: String,
    checks: Checks,
}

/// A store did not answer within 2 s: the failure envelope with `checks`.
#[derive(ToSchema)]
#[schema(example = json!({"status": "fail", "code": "service_unavailable", "message": "unavailable: redis", "checks": {"postgres": "up", "redis": "down"}}))]
pub struct HealthDown {
    #[schema(inline)]
    status: FailStatus,
    code: ErrorCode,
    /// Names the stores that are down.
    message: String,
    checks: Checks,
}

/// The body of register. Other fields are ignored (`role` and `verified` included).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"name": "Ada", "email": "ada@example.com", "password": "correct horse", "passwordConfirm": "correct horse"}))]
pub struct RegisterRequest {
    /// Trimmed; 1 to 100 characters after trimming; no control character (a tab or
    /// newline included) and no bidi override or isolate (U+202A..U+202E, U+2066..U+2069).
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Trimmed and lowercased; a valid address of at most 254 characters.
    #[schema(format = "email", max_length = 254)]
    email: String,
    /// 8 to 128 characters; never trimmed.
    #[schema(format = "password", min_length = 8, max_length = 128)]
    password: String,
    /// Equal to `password`.
    #[schema(format = "password", min_length = 8, max_length = 128)]
    password_confirm: String,
    /// A file name, a relative path, or an `http://`/`https://` URL (no other scheme, no
    /// `//host`, no control character); kept as given; `default.png` when absent or null.
    #[schema(max_length = 255)]
    photo: Option<String>,
}

/// The body of login. The email is matched trimmed and without regard to letter case.
#[derive(ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse"}))]
pub struct LoginRequest {
    email: String,
    #[schema(format = "password")]
    password: String,
}

/// `data.user`: the user.
#[derive(ToSchema)]
pub struct UserData {
    user: UserView<'static>,
}

/// The user, as register and `/api/users/me` answer it.
#[derive(ToSchema)]
pub struct UserAnswer {
    #[schema(inline)]
    status: SuccessStatus,
    data: UserData,
}

/// The body of a profile change: the fields to change. Absent or `null` fields stay as
/// they are; other fields (`email`, `role`, ...) are ignored.
#[derive(ToSchema)]
#[schema(example = json!({"name": "Ada Lovelace", "photo": "ada.png"}))]
pub struct ProfileRequest {
    /// As at register: trimmed; 1 to 100 characters after trimming; no control
    /// character and no bidi override or isolate.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// As at register: a file name, a relative path, or an `http://`/`https://` URL;
    /// kept as given; at most 255 characters.
    #[schema(max_length = 255)]
    photo: Option<String>,
}

/// `data` of the admin list: a page of users, oldest first.
#[derive(ToSchema)]
pub struct UserListData {
    users: Vec<UserView<'static>>,
    /// Pass it as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// A page of the list of users.
#[derive(ToSchema)]
pub struct UserList {
    #[schema(inline)]
    status: SuccessStatus,
    data: UserListData,
}

/// One session as the list shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    /// The session's id (`sid` in its tokens).
    pub id: Uuid,
    /// The login that began it.
    pub created_at: DateTime<Utc>,
    /// Its last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// As sent at login, at most 256 characters; empty if none was sent.
    pub user_agent: String,
    /// The client IP at login, by the rule of the login limits; empty if unknown.
    pub ip: String,
    /// Whether this is the session of the token the request carried.
    pub current: bool,
}

#[derive(ToSchema)]
pub struct Sessions {
    sessions: Vec<SessionView>,
}

/// The user's live sessions, newest first.
#[derive(ToSchema)]
pub struct SessionList {
    #[schema(inline)]
    status: SuccessStatus,
    data: Sessions,
}

#[derive(ToSchema)]
pub struct EndedCount {
    /// How many sessions ended.
    ended: u64,
}

#[derive(ToSchema)]
pub struct Ended {
    #[schema(inline)]
    status: SuccessStatus,
    data: EndedCount,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChangeRequest {
    #[schema(format = "password")]
    current_password: String,
    /// 8 to 128 characters.
    #[schema(format = "password", min_length = 8, max_length = 128)]
    new_password: String,
    /// Equal to `newPassword`.
    #[schema(format = "password")]
    new_password_confirm: String,
    /// Only with a second factor on, and then required: a code or a recovery code.
    #[schema(nullable = false)]
    code: Option<String>,
}

/// The body of the routes that spend a link: the `token` of the link's `?token=`.
#[derive(ToSchema)]
#[schema(example = json!({"token": "m1Jx0C4b2oqjN7s3T5dA9fKQe8ZyWcLhVuRpGtBiEkA"}))]
pub struct TokenRequest {
    /// 43 characters of base64url in every link the service sends.
    #[schema(min_length = 1, max_length = 100)]
    token: String,
}

/// The body of the routes that mail a link to an address.
#[derive(ToSchema)]
#[schema(example = json!({"email": "ada@example.com"}))]
pub struct EmailRequest {
    /// Trimmed and lowercased; a valid address of at most 254 characters.
    #[schema(format = "email", max_length = 254)]
    email: String,
}

/// The body of reset-password.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"token": "m1Jx0C4b2oqjN7s3T5dA9fKQe8ZyWcLhVuRpGtBiEkA", "password": "a new passphrase", "passwordConfirm": "a new passphrase"}))]
pub struct ResetRequest {
    #[schema(min_length = 1, max_length = 100)]
    token: String,
    /// 8 to 128 characters; never trimmed.
    #[schema(format = "password", min_length = 8, max_length = 128)]
    password: String,
    /// Equal to `password`.
    #[schema(format = "password", min_length = 8, max_length = 128)]
    password_confirm: String,
}

/// The body of an address change.
#[derive(ToSchema)]
#[schema(example = json!({"email": "ada@new.example.com", "password": "correct horse"}))]
pub struct AddressChangeRequest {
    /// The new address: trimmed and lowercased; valid, at most 254 characters, and not the
    /// current one.
    #[schema(format = "email", max_length = 254)]
    email: String,
    /// The current password.
    #[schema(format = "password")]
    password: String,
    /// Only with a second factor on, and then required: a code or a recovery code.
    #[schema(nullable = false)]
    code: Option<String>,
}

/// A request taken: what it leads to is mailed, or not, as the message says.
#[derive(ToSchema)]
pub struct Accepted {
    #[schema(inline)]
    status: SuccessStatus,
    /// For people; the same for every address.
    #[schema(example = "If the address has an account, a reset link is on its way.")]
    message: String,
}

#[derive(ToSchema)]
pub struct DeleteAccountRequest {
    #[schema(format = "password")]
    password: String,
    /// Only with a second factor on, and then required: a code or a recovery code.
    #[schema(nullable = false)]
    code: Option<String>,
}

/// A new session's access token. The refresh token travels only in its cookie.
#[derive(ToSchema)]
pub struct LoggedIn {
    #[schema(inline)]
    status: SuccessStatus,
    /// An RS256 JWT, about 800 bytes; also in the `access_token` cookie.
    access_token: String,
}

/// The session's new tokens.
#[derive(ToSchema)]
pub struct Refreshed {
    #[schema(inline)]
    status: SuccessStatus,
    /// An RS256 JWT; also in the `access_token` cookie.
    access_token: String,
    /// Only when the refresh token came as a Bearer header (a client without a cookie jar):
    /// the new refresh token, which replaces the one sent. Also in the `refresh_token`
    /// cookie.
    #[schema(nullable = false)]
    refresh_token: Option<String>,
}

/// `"RSA"`
#[derive(ToSchema)]
pub enum Rsa {
    #[serde(rename = "RSA")]
    Rsa,
}

/// `"sig"`
#[derive(ToSchema)]
pub enum Sig {
    #[serde(rename = "sig")]
    Sig,
}

/// `"RS256"`
#[derive(ToSchema)]
pub enum Rs256 {
    #[serde(rename = "RS256")]
    Rs256,
}

/// A public RSA key (RFC 7517).
#[derive(ToSchema)]
pub struct Jwk {
    #[schema(inline)]
    kty: Rsa,
    #[serde(rename = "use")]
    #[schema(inline)]
    use_: Sig,
    #[schema(inline)]
    alg: Rs256,
    /// The key's RFC 7638 thumbprint; the `kid` of the tokens it verifies.
    kid: String,
    /// The modulus, base64url.
    n: String,
    /// The exponent, base64url.
    e: String,
}

/// A JWK Set (RFC 7517), without the `status` envelope: the signing key first, then any
/// extra verification keys of a key rotation.
#[derive(ToSchema)]
pub struct Jwks {
    #[schema(min_items = 1)]
    keys: Vec<Jwk>,
}

/// An OpenAPI 3.1 description (this one).
#[derive(ToSchema)]
pub struct OpenApiDocument {
    #[schema(pattern = r"^3\.1\.\d+$", example = "3.1.0")]
    openapi: String,
    #[schema(value_type = Object)]
    info: (),
    #[schema(value_type = Object)]
    paths: (),
}

// The second factor.

/// A login whose user has a second factor: no session yet, no cookie.
#[derive(ToSchema)]
pub struct MfaRequired {
    #[schema(inline)]
    status: SuccessStatus,
    /// Always `true`.
    mfa_required: bool,
    /// Opaque, single use, for 5 minutes and at most 5 codes: send it with a code to
    /// `/api/auth/login/mfa`. Not a session: it opens no route.
    #[schema(min_length = 43, max_length = 43)]
    mfa_token: String,
}

/// What login answers with 200: a session, or the request for a code.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    LoggedIn(LoggedIn),
    MfaRequired(MfaRequired),
}

#[derive(ToSchema)]
pub struct MfaLoginRequest {
    /// From the login's answer.
    mfa_token: String,
    /// Six digits from the authenticator app (spaces ignored), or a recovery code
    /// (`xxxxx-xxxxx`, any letter case, the hyphen optional).
    #[schema(example = "123456")]
    code: String,
}

#[derive(ToSchema)]
pub struct RecoveryCodesLeft {
    /// Recovery codes still unused.
    recovery_codes_left: u32,
}

/// A login finished with a code.
#[derive(ToSchema)]
pub struct MfaLoggedIn {
    #[schema(inline)]
    status: SuccessStatus,
    /// An RS256 JWT, with `"amr":["pwd","otp"]`; also in the `access_token` cookie.
    access_token: String,
    /// Only when a recovery code was used.
    #[schema(nullable = false)]
    data: Option<RecoveryCodesLeft>,
}

#[derive(ToSchema)]
pub struct PasswordOnly {
    #[schema(format = "password")]
    password: String,
}

#[derive(ToSchema)]
pub struct EnrollmentData {
    /// The secret in base32 (RFC 4648, unpadded): for typing into an authenticator app.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    secret: String,
    /// The same secret as an `otpauth://totp/` URI: for a QR code.
    #[schema(
        example = "otpauth://totp/rs256-auth:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=rs256-auth"
    )]
    otpauth_uri: String,
}

#[derive(ToSchema)]
pub struct Enrollment {
    #[schema(inline)]
    status: SuccessStatus,
    data: EnrollmentData,
}

#[derive(ToSchema)]
pub struct CodeOnly {
    /// Six digits from the authenticator app.
    #[schema(example = "123456")]
    code: String,
}

#[derive(ToSchema)]
pub struct PasswordAndCode {
    #[schema(format = "password")]
    password: String,
    /// A code from the authenticator app, or a recovery code; missing is `invalid_code`.
    #[schema(nullable = false)]
    code: Option<String>,
}

#[derive(ToSchema)]
pub struct RecoveryCodeList {
    /// Ten single-use codes, `xxxxx-xxxxx`: shown this once, stored only as hashes.
    #[schema(min_items = 10, max_items = 10)]
    recovery_codes: Vec<String>,
}

#[derive(ToSchema)]
pub struct RecoveryCodes {
    #[schema(inline)]
    status: SuccessStatus,
    data: RecoveryCodeList,
}
