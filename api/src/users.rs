//! Creating users: shared by the admin endpoint, `flagstream-api user create` and the
//! bootstrap admin.

use sqlx::PgPool;

use crate::auth::{hash_password, Role};
use crate::store::users as store;
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
    if replace {
        store::upsert(pool, username, &hash, role.as_str()).await
    } else if store::insert(pool, username, &hash, role.as_str()).await? {
        Ok(())
    } else {
        Err(Error::Conflict(format!("user `{username}` already exists")))
    }
}

/// Creates the bootstrap admin only when there are no users at all, so restarting with the
/// variables still set never resets a password.
pub async fn bootstrap(pool: &PgPool, username: &str, password: String) -> Result<bool, Error> {
    if store::any(pool).await? {
        return Ok(false);
    }
    match create(pool, username, password, Role::Admin, false).await {
        Ok(()) => Ok(true),
        // Another replica won the race.
        Err(Error::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
