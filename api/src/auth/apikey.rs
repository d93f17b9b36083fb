//! API keys: `fsk_<prefix>_<secret>`. The prefix identifies a key in listings and audit
//! rows; only the SHA-256 digest of the whole key is stored.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

const SCHEME: &str = "fsk_";

pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: [u8; 32],
}

pub fn new_key() -> NewKey {
    let mut rng = rand::rng();
    let mut id = [0u8; 4];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let prefix = format!(
        "{SCHEME}{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let key = format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    NewKey {
        hash: hash_key(&key),
        key,
        prefix,
    }
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(SCHEME)
}
