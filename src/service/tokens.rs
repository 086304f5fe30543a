//! RS256 tokens: keys parsed once, claims, issuing and verifying.

use std::collections::HashMap;
use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::{ExpiresAt, now_ms};
use crate::config::{KeyPairPem, PublicKeyPem, Settings};
use crate::domain::Role;
use crate::error::{AppError, Result};

/// Far above any token we issue (about 800 bytes); refuses junk before any parsing.
const MAX_TOKEN_LEN: usize = 4096;
/// How long a token's store entry outlives the token: a request checked just before `exp`
/// still finds its entry, and so does an instance whose clock is up to a second behind.
const ENTRY_SLACK_MS: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub token_uuid: Uuid,
    pub sid: Uuid,
    pub typ: TokenType,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// Access tokens only: the user's role when the token was issued, for services that
    /// trust the token alone. This service authorizes by the stored user instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// How the session's login was proven (RFC 8176): `["pwd"]`, or `["pwd","otp"]` with a
    /// second factor. Both kinds carry it, so that a refresh keeps it. Empty in tokens issued
    /// before it existed, which stand for `["pwd"]`. Strings, not an enum: a value this
    /// version does not know (a newer one's, after a rollback) must not make a token invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// The `amr` of a login (RFC 8176 §2): the password, and the second factor's code if one was
/// asked (a recovery code counts as `otp` too: a one-time password).
pub fn login_amr(with_code: bool) -> Vec<String> {
    let mut amr = vec!["pwd".to_owned()];
    if with_code {
        amr.push("otp".to_owned());
    }
    amr
}

/// One kind's keys: the key it signs with, and every key it accepts, by `kid`.
struct KeySet {
    kid: String,
    signer: Signer,
    /// Keyed with the private key, for the service's other secrets (`Tokens::derive_key`).
    secret: hmac::Key,
    verifying: HashMap<String, DecodingKey>,
    jwks: Vec<Jwk>,
    ttl: Duration,
}

impl KeySet {
    fn from_pem(name: &str, pem: &KeyPairPem, ttl: Duration) -> Result<Self, String> {
        let signing = EncodingKey::from_rsa_pem(&pem.private_pem).map_err(|e| {
            format!("{name}_PRIVATE_KEY: not an RSA private key in PEM (PKCS#1 or PKCS#8): {e}")
        })?;
        let verifying = DecodingKey::from_rsa_pem(&pem.public_pem).map_err(|e| {
            format!("{name}_PUBLIC_KEY: not an RSA public key in PEM (SPKI or PKCS#1): {e}")
        })?;
        let from_private = Jwk::from_encoding_key(&signing, Algorithm::RS256)
            .map_err(|e| format!("{name}_PRIVATE_KEY: unusable RSA key: {e}"))?;
        let mut jwk = Jwk::from_decoding_key(&verifying, Some(Algorithm::RS256))
            .map_err(|e| format!("{name}_PUBLIC_KEY: unusable RSA key: {e}"))?;
        if jwk.algorithm != from_private.algorithm {
            return Err(format!(
                "{name}_PUBLIC_KEY: does not match {name}_PRIVATE_KEY"
            ));
        }
        let kid = identify(&mut jwk, &format!("{name}_PRIVATE_KEY"))?;
        let signer = Signer::new(&signing, &kid)
            .map_err(|e| format!("{name}_PRIVATE_KEY: unusable RSA key: {e}"))?;
        Ok(KeySet {
            kid: kid.clone(),
            signer,
            secret: hmac::Key::new(hmac::HMAC_SHA256, signing.as_bytes()),
            verifying: HashMap::from([(kid, verifying)]),
            jwks: vec![jwk],
            ttl,
        })
    }

    /// Accepts the extra keys for verification too (and lists them after the current key).
    /// A key already known, such as the current one, is not added twice.
    fn accept(&mut self, extras: &[ExtraKey]) {
        for extra in extras {
            if !self.verifying.contains_key(&extra.kid) {
                self.verifying.insert(extra.kid.clone(), extra.key.clone());
                self.jwks.push(extra.jwk.clone());
            }
        }
    }
}

/// A key that verifies but never signs: the next key before it signs, or the previous one
/// until its tokens have expired.
struct ExtraKey {
    source: String,
    kid: String,
    key: DecodingKey,
    jwk: Jwk,
}

impl ExtraKey {
    fn parse(extra: &PublicKeyPem) -> Result<Self, String> {
        let source = &extra.source;
        // A private key parses as a DecodingKey but has no public JWK: refused here too.
        let not_public = |e: jsonwebtoken::errors::Error| {
            format!("{source}: not an RSA public key in PEM (SPKI or PKCS#1): {e}")
        };
        let key = DecodingKey::from_rsa_pem(&extra.pem).map_err(not_public)?;
        let mut jwk = Jwk::from_decoding_key(&key, Some(Algorithm::RS256)).map_err(not_public)?;
        let kid = identify(&mut jwk, source)?;
        Ok(ExtraKey {
            source: source.clone(),
            kid,
            key,
            jwk,
        })
    }
}

/// Adds each kind's extra keys. A key that both kinds would accept is refused: a refresh
/// token must never verify as an access token, and the JWKS must list access keys only.
fn add_extra_keys(
    access: &mut KeySet,
    refresh: &mut KeySet,
    settings: &Settings,
) -> Result<(), String> {
    let parse_all = |pems: &[PublicKeyPem]| -> Result<Vec<ExtraKey>, String> {
        pems.iter().map(ExtraKey::parse).collect()
    };
    let access_extras = parse_all(&settings.access_keys.extra_public)?;
    let refresh_extras = parse_all(&settings.refresh_keys.extra_public)?;
    access.accept(&access_extras);
    refresh.accept(&refresh_extras);
    refuse_shared(&access_extras, refresh, "a refresh")?;
    refuse_shared(&refresh_extras, access, "an access")
}

fn refuse_shared(extras: &[ExtraKey], other: &KeySet, other_kind: &str) -> Result<(), String> {
    match extras.iter().find(|e| other.verifying.contains_key(&e.kid)) {
        Some(extra) => Err(format!(
            "{}: is also {other_kind} token key; access and refresh keys must differ",
            extra.source
        )),
        None => Ok(()),
    }
}

/// Checks a public key's size and names it: the kid is its RFC 7638 thumbprint, so the same
/// key gets the same kid on every instance. Fills in the JWK's kid, alg and use for the JWKS.
fn identify(jwk: &mut Jwk, source: &str) -> Result<String, String> {
    let bits = match &jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => modulus_bits(&rsa.n),
        _ => 0,
    };
    if bits < 2048 {
        return Err(format!(
            "{source}: RSA keys need at least 2048 bits, this one has {bits}"
        ));
    }
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("{source}: {e}"))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(kid)
}

/// Bits of an RSA modulus given as unpadded base64url (0 if it does not decode).
fn modulus_bits(n: &str) -> usize {
    let bytes = URL_SAFE_NO_PAD.decode(n).unwrap_or_default();
    let Some(first) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize
}

/// Signs with the RSA key parsed once. jsonwebtoken's `encode` parses the key again on
/// every call, which made signing about twice as slow here (see docs/performance.md).
struct Signer {
    key: RsaKeyPair,
    /// The JOSE header, already base64url-encoded: the same for every token of this key.
    header: String,
}

impl Signer {
    fn new(key: &EncodingKey, kid: &str) -> Result<Self, String> {
        // EncodingKey holds the PKCS#1 DER for RSA keys, whichever PEM form it came from.
        let key = RsaKeyPair::from_der(key.as_bytes()).map_err(|e| e.to_string())?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        Ok(Signer {
            key,
            header: URL_SAFE_NO_PAD.encode(header),
        })
    }

    fn sign(&self, claims: &Claims) -> Result<String> {
        let payload = serde_json::to_vec(claims).map_err(AppError::internal)?;
        let mut token = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(payload));
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| AppError::internal("RSA signing failed"))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }
}

pub struct Tokens {
    access: KeySet,
    refresh: KeySet,
    validation: Validation,
    issuer: String,
    audience: String,
    jwks_json: String,
}

impl Tokens {
    /// Parses and checks both key pairs and the extra public keys. The error is one line
    /// naming the setting.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let mut access =
            KeySet::from_pem("ACCESS_TOKEN", &settings.access_keys, settings.access_ttl)?;
        let mut refresh = KeySet::from_pem(
            "REFRESH_TOKEN",
            &settings.refresh_keys,
            settings.refresh_ttl,
        )?;
        if access.kid == refresh.kid {
            return Err("REFRESH_TOKEN_PRIVATE_KEY: must differ from the access token key".into());
        }
        add_extra_keys(&mut access, &mut refresh, settings)?;
        let mut validation = Validation::new(Algorithm::RS256);
        // jsonwebtoken compares `exp` in whole seconds, so with any leeway a token would verify
        // up to a second and more past its `exp`: `verify` checks it to the millisecond instead.
        validation.validate_exp = false;
        // Only `nbf` gets leeway, for instances whose clocks differ by up to a second.
        validation.leeway = 1;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let jwks = JwkSet {
            keys: access.jwks.clone(),
        };
        let jwks_json = serde_json::to_string(&jwks).map_err(|e| format!("JWKS: {e}"))?;
        Ok(Tokens {
            access,
            refresh,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            jwks_json,
        })
    }

    fn keys(&self, typ: TokenType) -> &KeySet {
        match typ {
            TokenType::Access => &self.access,
            TokenType::Refresh => &self.refresh,
        }
    }

    /// The access keys as a JWK Set, serialized once at start.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// A key for `purpose`, derived from the refresh signing key (HMAC-SHA256 of the purpose
    /// under its PKCS#1 DER): every instance with the same settings derives the same key, and
    /// no one without the private key can. A new signing key derives new keys.
    pub fn derive_key(&self, purpose: &str) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.derive_secret(purpose))
    }

    /// The bytes of `derive_key`'s key, for a cipher.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        let derived = hmac::sign(&self.refresh.secret, purpose.as_bytes());
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&derived.as_ref()[..32]);
        secret
    }

    /// How long tokens of this kind live.
    pub fn ttl(&self, typ: TokenType) -> Duration {
        self.keys(typ).ttl
    }

    /// The claims of a new token: a fresh `token_uuid`, valid from now for its lifetime.
    pub fn claims(&self, user: Uuid, sid: Uuid, typ: TokenType) -> Result<Claims> {
        let now = chrono::Utc::now().timestamp();
        self.claims_at(user, sid, typ, Uuid::new_v4(), now)
    }

    /// A new access and refresh token of one session, issued at the same second. Separate
    /// from signing, so that a refresh can check its session before paying for it.
    pub fn pair(&self, user: Uuid, sid: Uuid) -> Result<(Claims, Claims)> {
        let now = chrono::Utc::now().timestamp();
        Ok((
            self.claims_at(user, sid, TokenType::Access, Uuid::new_v4(), now)?,
            self.claims_at(user, sid, TokenType::Refresh, Uuid::new_v4(), now)?,
        ))
    }

    /// The claims of a token issued at `iat`. RS256 signatures are deterministic, so the
    /// same claims sign to the very same token: an in-grace replay gets the winner's tokens.
    pub fn claims_at(
        &self,
        user: Uuid,
        sid: Uuid,
        typ: TokenType,
        token_uuid: Uuid,
        iat: i64,
    ) -> Result<Claims> {
        // Lifetimes are capped in config, so this never overflows.
        let ttl = i64::try_from(self.ttl(typ).as_secs()).map_err(AppError::internal)?;
        Ok(Claims {
            sub: user,
            token_uuid,
            sid,
            typ,
            iat,
            nbf: iat,
            exp: iat.saturating_add(ttl),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            role: None,
            amr: Vec::new(),
        })
    }

    #[tracing::instrument(skip_all, fields(typ = ?claims.typ))]
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        self.keys(claims.typ).signer.sign(claims)
    }

    /// Claims and signature in one step.
    pub fn issue(&self, user: Uuid, sid: Uuid, typ: TokenType) -> Result<String> {
        self.sign(&self.claims(user, sid, typ)?)
    }

    /// Checks length, algorithm, `kid`, signature, time, issuer, audience and type.
    #[tracing::instrument(skip_all, fields(?typ))]
    pub fn verify(&self, token: &str, typ: TokenType) -> Result<Claims> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AppError::TokenInvalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AppError::TokenInvalid)?;
        if header.alg != Algorithm::RS256 {
            return Err(AppError::TokenInvalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys(typ).verifying.get(kid))
            .ok_or(AppError::TokenInvalid)?;
        // Expiry is checked below, to the millisecond: every failure here is invalidity.
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|_| AppError::TokenInvalid)?;
        if data.claims.typ != typ {
            return Err(AppError::TokenInvalid);
        }
        if is_expired(&data.claims, now_ms()) {
            return Err(AppError::TokenExpired);
        }
        Ok(data.claims)
    }
}

/// A token expires at the very instant its `exp` names, measured in milliseconds.
fn is_expired(claims: &Claims, now_ms: i64) -> bool {
    now_ms >= claims.exp.saturating_mul(1000)
}

/// Whether a token that verified has expired since: a store that answered late (a queue, a
/// lock) may have dropped its entry, and that is expiry, not revocation.
pub fn has_expired(claims: &Claims) -> bool {
    is_expired(claims, now_ms())
}

/// When a token's store entry may end: never before the token stops verifying.
pub fn entry_expiry(claims: &Claims) -> ExpiresAt {
    ExpiresAt::from_unix_ms(
        claims
            .exp
            .saturating_mul(1000)
            .saturating_add(ENTRY_SLACK_MS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev_pem(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/keys/dev/{name}.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn claims() -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            token_uuid: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            typ: TokenType::Access,
            iat: 1,
            nbf: 1,
            exp: 2,
            iss: "i".into(),
            aud: "a".into(),
            role: None,
            amr: Vec::new(),
        }
    }

    #[test]
    fn the_cached_signer_writes_exactly_what_jsonwebtoken_writes() {
        // RSASSA-PKCS1-v1_5 is deterministic, so the same input must give the same token.
        let key = EncodingKey::from_rsa_pem(&dev_pem("access_private")).unwrap();
        let signer = Signer::new(&key, "kid-1").unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("kid-1".into());
        let claims = claims();
        assert_eq!(
            signer.sign(&claims).unwrap(),
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        );
    }

    #[test]
    fn a_token_expires_at_the_millisecond_its_exp_names() {
        let claims = claims();
        assert!(!is_expired(&claims, 1999));
        assert!(is_expired(&claims, 2000));
        assert!(is_expired(&claims, 2001));
        // The entry outlives the token, so a token that verifies always finds it.
        assert!(entry_expiry(&claims).unix_ms() > 2000);
    }

    #[test]
    fn modulus_bits_counts_significant_bits() {
        assert_eq!(modulus_bits(&URL_SAFE_NO_PAD.encode([0x80; 256])), 2048);
        assert_eq!(modulus_bits(&URL_SAFE_NO_PAD.encode([0x7f; 256])), 2047);
        assert_eq!(modulus_bits(&URL_SAFE_NO_PAD.encode([0x00, 0x01])), 1);
        assert_eq!(modulus_bits("!!"), 0);
    }
}
