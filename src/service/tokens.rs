//! RS256 tokens: keys parsed once, claims, issuing and verifying.

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{KeyPairPem, Settings};
use crate::error::{AppError, Result};

/// Far above any token we issue (about 800 bytes); refuses junk before any parsing.
const MAX_TOKEN_LEN: usize = 4096;

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
}

/// A signed token and what the session store needs to know of it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub token_uuid: Uuid,
    pub ttl: Duration,
}

/// One kind's keys: the key it signs with, and every key it accepts, by `kid`.
struct KeySet {
    kid: String,
    signing: EncodingKey,
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
        if let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            let bits = base64_len_to_bits(&rsa.n);
            if bits < 2048 {
                return Err(format!(
                    "{name}_PRIVATE_KEY: RSA keys need at least 2048 bits, this one has {bits}"
                ));
            }
        }
        // RFC 7638 thumbprint: the same key always gets the same kid, on every instance.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("{name}_PUBLIC_KEY: {e}"))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(KeySet {
            kid: kid.clone(),
            signing,
            verifying: HashMap::from([(kid, verifying)]),
            jwks: vec![jwk],
            ttl,
        })
    }
}

/// Bits of an RSA modulus given as unpadded base64url.
fn base64_len_to_bits(n: &str) -> usize {
    let bytes = n.len() * 3 / 4;
    bytes * 8
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
    /// Parses and checks both key pairs. The error is one line naming the setting.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let access = KeySet::from_pem("ACCESS_TOKEN", &settings.access_keys, settings.access_ttl)?;
        let refresh = KeySet::from_pem(
            "REFRESH_TOKEN",
            &settings.refresh_keys,
            settings.refresh_ttl,
        )?;
        if access.kid == refresh.kid {
            return Err("REFRESH_TOKEN_PRIVATE_KEY: must differ from the access token key".into());
        }
        let mut validation = Validation::new(Algorithm::RS256);
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

    pub fn ttl(&self, typ: TokenType) -> Duration {
        self.keys(typ).ttl
    }

    #[tracing::instrument(skip_all, fields(?typ))]
    pub fn issue(&self, user: Uuid, sid: Uuid, typ: TokenType) -> Result<Issued> {
        let keys = self.keys(typ);
        let now = chrono::Utc::now().timestamp();
        let ttl_secs = i64::try_from(keys.ttl.as_secs()).map_err(AppError::internal)?;
        let claims = Claims {
            sub: user,
            token_uuid: Uuid::new_v4(),
            sid,
            typ,
            iat: now,
            nbf: now,
            exp: now + ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(keys.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &keys.signing).map_err(AppError::internal)?;
        Ok(Issued {
            token,
            token_uuid: claims.token_uuid,
            ttl: keys.ttl,
        })
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
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AppError::TokenExpired,
                    _ => AppError::TokenInvalid,
                }
            })?;
        if data.claims.typ != typ {
            return Err(AppError::TokenInvalid);
        }
        Ok(data.claims)
    }
}
