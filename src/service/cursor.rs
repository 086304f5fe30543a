//! The admin list's cursors: a place in the list, sealed so that only this service's own
//! cursors are taken. A forged one (an instant no store can hold, a far future) never reaches
//! a query: it is refused as not ours, on every backend alike.

use aws_lc_rs::{constant_time, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use uuid::Uuid;

use crate::store::users::Cursor;

/// 128 bits of HMAC-SHA256: forging one is 2^128 guesses.
const TAG_LEN: usize = 16;
/// Creation instant (Unix microseconds, big-endian), id, tag.
const SEALED_LEN: usize = 8 + 16 + TAG_LEN;

pub struct CursorSeal {
    key: hmac::Key,
}

impl CursorSeal {
    pub fn new(key: hmac::Key) -> Self {
        CursorSeal { key }
    }

    /// Opaque text for clients: base64url of the place and its tag.
    pub fn seal(&self, cursor: &Cursor) -> String {
        let mut bytes = [0u8; SEALED_LEN];
        bytes[..8].copy_from_slice(&cursor.created_at.timestamp_micros().to_be_bytes());
        bytes[8..24].copy_from_slice(cursor.id.as_bytes());
        let tag = hmac::sign(&self.key, &bytes[..24]);
        bytes[24..].copy_from_slice(&tag.as_ref()[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// What `seal` wrote with this key, or `None` for anything else.
    pub fn open(&self, text: &str) -> Option<Cursor> {
        let bytes: [u8; SEALED_LEN] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        let (place, tag) = bytes.split_at(24);
        let expected = hmac::sign(&self.key, place);
        constant_time::verify_slices_are_equal(&expected.as_ref()[..TAG_LEN], tag).ok()?;
        let micros = i64::from_be_bytes(place[..8].try_into().ok()?);
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros)?,
            id: Uuid::from_slice(&place[8..]).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &[u8]) -> CursorSeal {
        CursorSeal::new(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    #[test]
    fn a_cursor_opens_with_its_own_key_only() {
        let (ours, theirs) = (seal(b"ours"), seal(b"theirs"));
        for micros in [0, 1_764_633_230_123_456, -1] {
            let cursor = Cursor {
                created_at: DateTime::from_timestamp_micros(micros).unwrap(),
                id: Uuid::new_v4(),
            };
            let text = ours.seal(&cursor);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            );
            assert_eq!(ours.open(&text), Some(cursor));
            assert_eq!(theirs.open(&text), None);
            assert_eq!(ours.open(&text[1..]), None);
            assert_eq!(ours.open(&format!("{text}AA")), None);
        }
    }

    #[test]
    fn a_changed_byte_or_an_unsealed_place_is_refused() {
        let ours = seal(b"ours");
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_633_230_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        let bytes = URL_SAFE_NO_PAD.decode(ours.seal(&cursor)).unwrap();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 1;
            assert_eq!(
                ours.open(&URL_SAFE_NO_PAD.encode(&changed)),
                None,
                "byte {i}"
            );
        }
        // The unsealed 24-byte form of earlier releases, with an instant Postgres cannot hold.
        let mut old = [0u8; 24];
        old[..8].copy_from_slice(&i64::MIN.to_be_bytes());
        assert_eq!(ours.open(&URL_SAFE_NO_PAD.encode(old)), None);
        for junk in ["", "not a cursor", "%FF"] {
            assert_eq!(ours.open(junk), None);
        }
    }
}
