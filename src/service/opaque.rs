//! Opaque tokens and sealed secrets. A token (a mailed link's, an `mfa_token`) is 32 random
//! bytes in base64url; the store keeps only its SHA-256. A secret the service must read again
//! (a link's token in the outbox, an authenticator secret) is kept sealed with AES-256-GCM,
//! bound to what it belongs to. A copy of the database opens no mailbox and makes no codes.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::error::Unspecified;
use aws_lc_rs::{digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const TOKEN_BYTES: usize = 32;
/// The length of a token in its link: 32 bytes in base64url, unpadded.
pub const TOKEN_CHARS: usize = 43;

/// A new token: its text for the link, and the hash to store.
pub fn new_token() -> Result<(String, [u8; 32]), Unspecified> {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::fill(&mut bytes)?;
    let text = URL_SAFE_NO_PAD.encode(bytes);
    Ok((text, hash(&bytes)))
}

/// The stored form of a token as presented: `None` for anything `new_token` cannot have made.
pub fn hash_of(text: &str) -> Option<[u8; 32]> {
    if text.len() != TOKEN_CHARS {
        return None;
    }
    let bytes: [u8; TOKEN_BYTES] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
    Some(hash(&bytes))
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// Seals secrets bound to their owner (the outbox: a token to its recipient; the second
/// factor: a secret to its user): a sealed secret moved to another row, or an owner changed
/// in the table, no longer opens.
pub struct Seal {
    key: LessSafeKey,
}

impl Seal {
    pub fn new(secret: &[u8; 32]) -> Result<Self, String> {
        let key = UnboundKey::new(&AES_256_GCM, secret)
            .map_err(|_| "a sealing key could not be made".to_owned())?;
        Ok(Seal {
            key: LessSafeKey::new(key),
        })
    }

    /// A random nonce, then the ciphertext and its tag.
    pub fn seal(&self, token: &str, recipient: &str) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).ok()?;
        let mut sealed = token.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(recipient.as_bytes()),
                &mut sealed,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Some(out)
    }

    /// The token `seal` sealed for `recipient` with this key, or `None`.
    pub fn open(&self, sealed: &[u8], recipient: &str) -> Option<String> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(recipient.as_bytes()), &mut body)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hashes_to_what_was_stored_and_nothing_else_does() {
        let (text, stored) = new_token().unwrap();
        assert_eq!(text.len(), TOKEN_CHARS);
        assert_eq!(hash_of(&text), Some(stored));
        let (other, _) = new_token().unwrap();
        assert_ne!(hash_of(&other), Some(stored));
        for bad in [
            "",
            "short",
            &format!("{text}A"),
            &text.replace(&text[..1], "+"),
        ] {
            assert_eq!(hash_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_recipient() {
        let seal = Seal::new(&[7; 32]).unwrap();
        let sealed = seal.seal("the-token", "ada@example.com").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"the-token"));
        assert_eq!(
            seal.open(&sealed, "ada@example.com").as_deref(),
            Some("the-token")
        );
        assert_eq!(seal.open(&sealed, "eve@example.com"), None);
        assert_eq!(
            Seal::new(&[8; 32])
                .unwrap()
                .open(&sealed, "ada@example.com"),
            None
        );
        assert_eq!(seal.open(&sealed[..5], "ada@example.com"), None);
    }
}
