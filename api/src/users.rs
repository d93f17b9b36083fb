//! Creating users: shared by the admin endpoint, `flagstream-api user create` and the
//! bootstrap admin.

use sqlx::PgPool;

use crate::auth::{hash_password, Role};
use crate::Error;

pub fn check_username(username: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "username",
            "a username is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '@' and '-'",
        ))
    }
}

/// Creates the user, or with `replace` resets an existing one's password and role.
pub async fn create(
    pool: &PgPool,
    username: &str,
    password: String,
    role: Role,
    replace: bool,
) -> Result<(), Error> {
    check_username(username)?;
    let hash = hash_password(password).await?;
    let sql = if replace {
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO UPDATE
         SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, updated_at = now(),
             token_generation = users.token_generation + 1"
    } else {
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO NOTHING"
    };
    let inserted = sqlx::query(sql)
        .bind(username)
        .bind(hash)
        .bind(role.as_str())
        .execute(pool)
        .await?;
    if inserted.rows_affected() == 0 {
        return Err(Error::Conflict(format!("user `{username}` already exists")));
    }
    Ok(())
}

/// Creates the bootstrap admin only when there are no users at all, so restarting with the
/// variables still set never resets a password.
pub async fn bootstrap(pool: &PgPool, username: &str, password: String) -> Result<bool, Error> {
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(pool)
        .await?;
    if any {
        return Ok(false);
    }
    match create(pool, username, password, Role::Admin, false).await {
        Ok(()) => Ok(true),
        // Another replica won the race.
        Err(Error::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
