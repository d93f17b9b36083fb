//! Users (`users`) and API keys (`api_keys`): accounts, credentials and who they are.

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use crate::Error;

pub struct User {
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
}

/// What a login checks.
pub struct Credentials {
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub token_generation: i32,
}

/// A change to a user; None leaves that part as it is. A new password also bumps the token
/// generation, which invalidates the user's tokens.
pub struct UserChange<'a> {
    pub role: Option<&'a str>,
    pub disabled: Option<bool>,
    pub password_hash: Option<&'a str>,
}

pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub role: String,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a [u8],
    pub role: &'a str,
    pub created_by: &'a str,
    pub expires_at: Option<OffsetDateTime>,
}

pub async fn list(pool: &PgPool) -> Result<Vec<User>, Error> {
    Ok(sqlx::query_as!(
        User,
        "SELECT username, role, disabled, created_at FROM users ORDER BY username"
    )
    .fetch_all(pool)
    .await?)
}

pub async fn any(pool: &PgPool) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM users) AS "any!""#)
            .fetch_one(pool)
            .await?,
    )
}

/// False when the username is taken.
pub async fn insert(
    pool: &PgPool,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<bool, Error> {
    let done = sqlx::query!(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO NOTHING",
        username,
        password_hash,
        role
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Creates the user or resets an existing one's password and role (ending its sessions).
pub async fn upsert(
    pool: &PgPool,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<(), Error> {
    sqlx::query!(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO UPDATE
         SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, updated_at = now(),
             token_generation = users.token_generation + 1",
        username,
        password_hash,
        role
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Every enabled admin, locked, so two demotions at once cannot both pass the last-admin
/// check.
pub async fn lock_admins(db: impl PgExecutor<'_>) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar!(
        "SELECT username FROM users WHERE role = 'admin' AND NOT disabled FOR UPDATE"
    )
    .fetch_all(db)
    .await?)
}

/// The user's role and disabled flag after the change, or None when there is no such user.
pub async fn update(
    db: impl PgExecutor<'_>,
    username: &str,
    change: UserChange<'_>,
) -> Result<Option<(String, bool)>, Error> {
    let row = sqlx::query!(
        "UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled),
                          password_hash = COALESCE($4, password_hash), updated_at = now(),
                          token_generation = token_generation + ($4::text IS NOT NULL)::int
         WHERE username = $1 RETURNING role, disabled",
        username,
        change.role,
        change.disabled,
        change.password_hash
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.role, r.disabled)))
}

pub async fn credentials(pool: &PgPool, username: &str) -> Result<Option<Credentials>, Error> {
    Ok(sqlx::query_as!(
        Credentials,
        "SELECT password_hash, role, disabled, token_generation FROM users WHERE username = $1",
        username
    )
    .fetch_optional(pool)
    .await?)
}

/// The role of an enabled user whose tokens are of this generation.
pub async fn session_role(
    pool: &PgPool,
    username: &str,
    generation: i32,
) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar!(
        "SELECT role FROM users WHERE username = $1 AND NOT disabled AND token_generation = $2",
        username,
        generation
    )
    .fetch_optional(pool)
    .await?)
}

/// (prefix, role) of the live key with this digest.
pub async fn key_by_hash(pool: &PgPool, hash: &[u8]) -> Result<Option<(String, String)>, Error> {
    let row = sqlx::query!(
        "SELECT prefix, role FROM api_keys
         WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
        hash
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.prefix, r.role)))
}

pub async fn keys(pool: &PgPool) -> Result<Vec<ApiKey>, Error> {
    Ok(sqlx::query_as!(
        ApiKey,
        "SELECT id, name, prefix, role, created_by, created_at, expires_at, revoked_at
         FROM api_keys ORDER BY id"
    )
    .fetch_all(pool)
    .await?)
}

pub async fn insert_key(pool: &PgPool, key: NewApiKey<'_>) -> Result<i64, Error> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO api_keys (name, prefix, key_hash, role, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        key.name,
        key.prefix,
        key.hash,
        key.role,
        key.created_by,
        key.expires_at
    )
    .fetch_one(pool)
    .await?)
}

/// Revokes the key (once: a second revoke keeps the first time) and returns its prefix.
pub async fn revoke_key(pool: &PgPool, id: i64) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING prefix",
        id
    )
    .fetch_optional(pool)
    .await?)
}
