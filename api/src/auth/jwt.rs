//! Login tokens: HS256 with a secret of at least 32 bytes, or EdDSA with an Ed25519 key pair.
//! The algorithm is pinned, so `alg: none` and algorithm-confusion tokens never verify.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Role;
use crate::config::Config;
use crate::Error;

pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    /// The user's `token_generation` at issue; tokens from before a password change carry
    /// an older one and are refused.
    #[serde(default)]
    pub gen: i32,
}

pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    algorithm: Algorithm,
    validation: Validation,
    ttl_secs: u64,
    issuer: String,
    audience: String,
}

impl Jwt {
    pub fn from_config(config: &Config) -> Result<Jwt, Error> {
        let (encoding, decoding, algorithm) = match (
            &config.jwt_private_key_file,
            &config.jwt_public_key_file,
            &config.jwt_secret_key,
        ) {
            (Some(private), Some(public), _) => {
                let read = |path: &std::path::Path| {
                    std::fs::read(path)
                        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))
                };
                let bad = |what: &str| Error::Config(format!("{what} is not an Ed25519 PEM key"));
                (
                    EncodingKey::from_ed_pem(&read(private)?)
                        .map_err(|_| bad("JWT_PRIVATE_KEY_FILE"))?,
                    DecodingKey::from_ed_pem(&read(public)?)
                        .map_err(|_| bad("JWT_PUBLIC_KEY_FILE"))?,
                    Algorithm::EdDSA,
                )
            }
            (None, None, Some(secret)) => {
                let secret = secret.expose().as_bytes();
                if secret.len() < MIN_SECRET_LEN {
                    return Err(Error::Config(format!(
                        "JWT_SECRET_KEY must be at least {MIN_SECRET_LEN} bytes (try `openssl rand -hex 32`)"
                    )));
                }
                (
                    EncodingKey::from_secret(secret),
                    DecodingKey::from_secret(secret),
                    Algorithm::HS256,
                )
            }
            (None, None, None) => {
                return Err(Error::Config(
                    "set JWT_SECRET_KEY (at least 32 bytes), or JWT_PRIVATE_KEY_FILE and \
                     JWT_PUBLIC_KEY_FILE"
                        .into(),
                ))
            }
            _ => {
                return Err(Error::Config(
                    "JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE go together".into(),
                ))
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Jwt {
            encoding,
            decoding,
            algorithm,
            validation,
            ttl_secs: config.jwt_expiration_secs,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        })
    }

    /// A signed token for `username` and its expiry (Unix seconds).
    pub fn issue(&self, username: &str, role: Role, gen: i32) -> Result<(String, u64), Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| Error::Internal(e.to_string()))?
            .as_secs();
        let claims = Claims {
            sub: username.to_owned(),
            role,
            iat: now,
            exp: now + self.ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            gen,
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))?;
        Ok((token, claims.exp))
    }

    /// The claims of a valid, unexpired token for this issuer and audience; None otherwise.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}
