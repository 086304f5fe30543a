//! The second factor's codes, with no store: TOTP (RFC 6238: SHA-1, 6 digits, 30-second
//! steps), recovery codes, and the sealing of the secret. Everything here takes the time as an
//! argument, so the step boundaries are tested with a driven clock.

use aws_lc_rs::hmac;
use aws_lc_rs::rand;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;

use crate::service::opaque::Seal;

/// Seconds per TOTP step.
pub const STEP_SECS: u64 = 30;
/// 160 bits, the HMAC-SHA-1 block's worth that RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;
/// Crockford's base32, lowercase: no i, l, o or u to misread. 10 characters: 50 bits.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const RECOVERY_CHARS: usize = 10;

/// A code as a client sent it, recognised by its shape.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// Six digits (spaces removed).
    Totp(String),
    /// Ten characters of the alphabet, lowercased, hyphen removed.
    Recovery(String),
}

impl Presented {
    /// `None` for anything that is neither shape: it can match nothing.
    pub fn parse(code: &str) -> Option<Self> {
        let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Presented::Totp(compact));
        }
        let recovery: String = compact
            .chars()
            .filter(|&c| c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let shaped = recovery.len() == RECOVERY_CHARS
            && recovery.bytes().all(|b| ALPHABET.contains(&b))
            && compact.chars().filter(|&c| c == '-').count() <= 1;
        shaped.then_some(Presented::Recovery(recovery))
    }
}

/// The step of `code` among the step of `now` and one either side, later than `after` (the
/// last step used): `None` if there is none. Earlier steps first, so a code is matched to
/// the oldest step it may be.
pub fn matching_step(totp: &Totp, code: &str, now: u64, after: i64) -> Option<u64> {
    let current = now / STEP_SECS;
    (current.saturating_sub(1)..=current + 1)
        .filter(|&step| i64::try_from(step).is_ok_and(|s| s > after))
        .find(|&step| totp.check(code, step * STEP_SECS).is_some())
}

/// The keys of the second factor: one seals secrets, one hashes recovery codes.
pub struct Codes {
    seal: Seal,
    recovery: hmac::Key,
    issuer: String,
}

impl Codes {
    /// With `key` (`super::key_in_use`); `issuer` names the service in authenticator apps.
    pub fn new(key: [u8; 32], issuer: &str) -> Result<Self, String> {
        let seal_key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), b"totp seal v1");
        let mut seal_secret = [0u8; 32];
        seal_secret.copy_from_slice(seal_key.as_ref());
        let recovery_key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), b"recovery v1");
        Ok(Codes {
            seal: Seal::new(&seal_secret)?,
            recovery: hmac::Key::new(hmac::HMAC_SHA256, recovery_key.as_ref()),
            issuer: issuer.to_owned(),
        })
    }

    /// A new secret: its base32 text, sealed for `user`.
    pub fn new_secret(&self, user: Uuid) -> Option<(String, Vec<u8>)> {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::fill(&mut bytes).ok()?;
        let text = Secret::from(bytes.to_vec()).to_base32();
        let sealed = self.seal.seal(&text, &owner(user))?;
        Some((text, sealed))
    }

    /// The generator of a sealed secret; `None` if it does not open with this key for `user`.
    pub fn open(&self, user: Uuid, sealed: &[u8]) -> Option<Totp> {
        let text = self.seal.open(sealed, &owner(user))?;
        totp(&text, None).ok()
    }

    /// The `otpauth://` URI of a secret for the account `email`.
    pub fn uri(&self, secret: &str, email: &str) -> Option<String> {
        // A `:` would split the label; an address with one is refused at register anyway.
        let account = email.replace(':', "");
        totp(secret, Some((&self.issuer, &account)))
            .ok()?
            .to_url()
            .ok()
    }

    /// Ten new recovery codes as shown (`xxxxx-xxxxx`), and their hashes to store.
    pub fn new_recovery_codes(&self, user: Uuid) -> Option<(Vec<String>, Vec<[u8; 32]>)> {
        let mut shown = Vec::with_capacity(RECOVERY_CODES);
        let mut hashes = Vec::with_capacity(RECOVERY_CODES);
        while shown.len() < RECOVERY_CODES {
            let mut bytes = [0u8; RECOVERY_CHARS];
            rand::fill(&mut bytes).ok()?;
            // 256 is a multiple of 32: every character is equally likely.
            let chars: String = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
                .collect();
            let hash = self.recovery_hash(user, &chars);
            if hashes.contains(&hash) {
                continue;
            }
            shown.push(format!("{}-{}", &chars[..5], &chars[5..]));
            hashes.push(hash);
        }
        Some((shown, hashes))
    }

    /// The stored form of a recovery code (as `Presented::Recovery` holds it): keyed, so a
    /// copy of the table cannot be searched for codes without the key, and bound to the user.
    pub fn recovery_hash(&self, user: Uuid, code: &str) -> [u8; 32] {
        let mut input = user.as_bytes().to_vec();
        input.extend_from_slice(code.as_bytes());
        let tag = hmac::sign(&self.recovery, &input);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// What a sealed secret is bound to.
fn owner(user: Uuid) -> String {
    format!("totp:{user}")
}

fn totp(secret: &str, label: Option<(&str, &str)>) -> Result<Totp, String> {
    let secret = Secret::try_from_base32(secret).map_err(|e| e.to_string())?;
    let mut builder = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(0)
        .with_step_duration(STEP_SECS)
        .with_secret(secret);
    if let Some((issuer, account)) = label {
        builder = builder
            .with_issuer(Some(issuer.to_owned()))
            .with_account_name(account.to_owned());
    }
    builder.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> Codes {
        Codes::new([3; 32], "rs256-auth").unwrap()
    }

    /// RFC 6238's SHA-1 secret, in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_are_those_of_rfc_6238() {
        let totp = totp(RFC_SECRET, None).unwrap();
        // Appendix B, SHA-1, the last six of the eight digits.
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(
                matching_step(&totp, code, time, -1),
                Some(time / 30),
                "{time}"
            );
        }
    }

    #[test]
    fn a_code_is_good_for_its_step_and_one_either_side_and_no_further() {
        let totp = totp(RFC_SECRET, None).unwrap();
        let step = 1_000_000u64;
        let code = totp.generate(step * 30).to_string();
        // The last second of the step before the one before: two steps early.
        assert_eq!(matching_step(&totp, &code, (step - 1) * 30 - 1, -1), None);
        // From the first second of the step before to the last second of the step after.
        for now in [
            (step - 1) * 30,
            step * 30,
            step * 30 + 29,
            (step + 2) * 30 - 1,
        ] {
            assert_eq!(matching_step(&totp, &code, now, -1), Some(step), "{now}");
        }
        assert_eq!(matching_step(&totp, &code, (step + 2) * 30, -1), None);
    }

    #[test]
    fn a_used_step_and_every_older_one_are_refused() {
        let totp = totp(RFC_SECRET, None).unwrap();
        let step = 1_000_000u64;
        let code = totp.generate(step * 30).to_string();
        let now = step * 30 + 10;
        let used = i64::try_from(step).unwrap();
        assert_eq!(matching_step(&totp, &code, now, used - 1), Some(step));
        assert_eq!(matching_step(&totp, &code, now, used), None);
        let before = totp.generate((step - 1) * 30).to_string();
        assert_eq!(matching_step(&totp, &before, now, used), None);
        let next = totp.generate((step + 1) * 30).to_string();
        assert_eq!(matching_step(&totp, &next, now, used), Some(step + 1));
    }

    #[test]
    fn codes_are_told_apart_by_shape() {
        assert_eq!(
            Presented::parse(" 123 456 "),
            Some(Presented::Totp("123456".into()))
        );
        assert_eq!(
            Presented::parse("AB3DE-fg4hj"),
            Some(Presented::Recovery("ab3defg4hj".into()))
        );
        assert_eq!(
            Presented::parse("ab3defg4hj"),
            Some(Presented::Recovery("ab3defg4hj".into()))
        );
        for bad in [
            "",
            "12345",
            "1234567",
            "ab3de-fg4hi",
            "ab3de-fg4h",
            "a-b3de-fg4hj",
            "١٢٣٤٥٦",
        ] {
            assert_eq!(Presented::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn recovery_codes_are_ten_distinct_in_their_shape_and_bound_to_the_user() {
        let codes = codes();
        let user = Uuid::new_v4();
        let (shown, hashes) = codes.new_recovery_codes(user).unwrap();
        assert_eq!(shown.len(), 10);
        for (code, hash) in shown.iter().zip(&hashes) {
            let Some(Presented::Recovery(compact)) = Presented::parse(code) else {
                panic!("{code}")
            };
            assert_eq!(code.len(), 11);
            assert_eq!(&codes.recovery_hash(user, &compact), hash);
            assert_ne!(&codes.recovery_hash(Uuid::new_v4(), &compact), hash);
        }
        let mut unique = hashes.clone();
        unique.dedup();
        assert_eq!(unique.len(), 10);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key() {
        let codes = codes();
        let user = Uuid::new_v4();
        let (text, sealed) = codes.new_secret(user).unwrap();
        assert_eq!(text.len(), 32);
        assert!(!sealed.windows(8).any(|w| w == &text.as_bytes()[..8]));
        let code = totp(&text, None).unwrap().generate(30_000).to_string();
        let opened = codes.open(user, &sealed).unwrap();
        assert_eq!(matching_step(&opened, &code, 30_000, -1), Some(1000));
        assert!(codes.open(Uuid::new_v4(), &sealed).is_none());
        let other = Codes::new([4; 32], "rs256-auth").unwrap();
        assert!(other.open(user, &sealed).is_none());
    }

    #[test]
    fn the_uri_names_the_issuer_and_account() {
        let uri = codes().uri(RFC_SECRET, "ada@example.com").unwrap();
        assert_eq!(
            uri,
            format!(
                "otpauth://totp/rs256-auth:ada%40example.com?secret={RFC_SECRET}&issuer=rs256-auth"
            )
        );
    }
}
