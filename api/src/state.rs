use sqlx::PgPool;

use crate::auth::TokenDigest;

/// Shared by every request; built from config, so tests can build their own.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub token: TokenDigest,
}
