//! Read access to /api/v1, by bearer token. Users, roles and API keys replace this later.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::state::AppState;
use crate::Error;

/// Shortest accepted token; anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 32;

/// The token is kept only as its digest, compared in constant time.
#[derive(Clone)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn new(token: &str) -> Result<TokenDigest, Error> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(Error::Config(format!(
                "API_TOKEN must be at least {MIN_TOKEN_LEN} characters (try `openssl rand -hex 32`)"
            )));
        }
        Ok(TokenDigest(Sha256::digest(token.as_bytes()).into()))
    }

    fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.0).into()
    }
}

/// Present in a handler's arguments, it admits only requests with the API token.
pub struct Reader;

impl FromRequestParts<AppState> for Reader {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(Error::Unauthorized)?;
        if state.token.matches(presented.trim()) {
            Ok(Reader)
        } else {
            Err(Error::Unauthorized)
        }
    }
}
