//! Users and API keys, for admins. Every change is audited.

use ::time::OffsetDateTime;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::time;
use crate::audit::{self, Entry};
use crate::auth::{hash_password, new_key, ClientIp, Principal, Role};
use crate::extract::{Body, Path};
use crate::state::AppState;
use crate::{users, Error};

async fn audited(
    state: &AppState,
    principal: &Principal,
    ip: Option<std::net::IpAddr>,
    action: &str,
    target: &str,
    details: Value,
) -> Result<(), Error> {
    audit::record(
        &state.pool,
        Entry {
            actor: &principal.name,
            action,
            target: Some(target),
            success: true,
            ip,
            details,
        },
    )
    .await
}

pub async fn list_users(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let rows: Vec<(String, String, bool, OffsetDateTime)> =
        sqlx::query_as("SELECT username, role, disabled, created_at FROM users ORDER BY username")
            .fetch_all(&state.pool)
            .await?;
    let users: Vec<Value> = rows
        .into_iter()
        .map(|(username, role, disabled, created)| {
            json!({ "username": username, "role": role, "disabled": disabled,
                    "created_at": time::json(Some(created)) })
        })
        .collect();
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    role: Role,
}

pub async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Body(user): Body<NewUser>,
) -> Result<Json<Value>, Error> {
    users::create(&state.pool, &user.username, user.password, user.role, false).await?;
    audited(
        &state,
        &principal,
        ip,
        "user.create",
        &user.username,
        json!({ "role": user.role }),
    )
    .await?;
    Ok(Json(
        json!({ "username": user.username, "role": user.role, "disabled": false }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    role: Option<Role>,
    disabled: Option<bool>,
    password: Option<String>,
}

pub async fn update_user(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
    Body(change): Body<UserChange>,
) -> Result<Json<Value>, Error> {
    if username == principal.name && (change.disabled == Some(true) || change.role.is_some()) {
        return Err(Error::Conflict(
            "admins cannot disable themselves or change their own role".into(),
        ));
    }
    let hash = match change.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let mut tx = state.pool.begin().await?;
    if change.disabled == Some(true) || change.role.is_some_and(|r| r != Role::Admin) {
        // Locks every enabled admin, so two demotions at once cannot both pass the check.
        let admins: Vec<String> = sqlx::query_scalar(
            "SELECT username FROM users WHERE role = 'admin' AND NOT disabled FOR UPDATE",
        )
        .fetch_all(&mut *tx)
        .await?;
        if admins == [username.as_str()] {
            return Err(Error::Conflict(format!(
                "`{username}` is the last enabled admin; make another admin first"
            )));
        }
    }
    let row: Option<(String, bool)> = sqlx::query_as(
        "UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled),
                          password_hash = COALESCE($4, password_hash), updated_at = now(),
                          token_generation = token_generation + ($4 IS NOT NULL)::int
         WHERE username = $1 RETURNING role, disabled",
    )
    .bind(&username)
    .bind(change.role.map(Role::as_str))
    .bind(change.disabled)
    .bind(hash.as_deref())
    .fetch_optional(&mut *tx)
    .await?;
    let (role, disabled) = row.ok_or(Error::NotFound)?;
    audit::record(
        &mut *tx,
        Entry {
            actor: &principal.name,
            action: "user.update",
            target: Some(&username),
            success: true,
            ip,
            details: json!({ "role": change.role, "disabled": change.disabled,
                             "password_changed": hash.is_some() }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(
        json!({ "username": username, "role": role, "disabled": disabled }),
    ))
}

pub async fn list_keys(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    type Row = (
        i64,
        String,
        String,
        String,
        String,
        OffsetDateTime,
        Option<OffsetDateTime>,
        Option<OffsetDateTime>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, name, prefix, role, created_by, created_at, expires_at, revoked_at
         FROM api_keys ORDER BY id",
    )
    .fetch_all(&state.pool)
    .await?;
    let keys: Vec<Value> = rows
        .into_iter()
        .map(|(id, name, prefix, role, by, created, expires, revoked)| {
            json!({ "id": id, "name": name, "prefix": prefix, "role": role,
                    "created_by": by, "created_at": time::json(Some(created)),
                    "expires_at": time::json(expires), "revoked_at": time::json(revoked) })
        })
        .collect();
    Ok(Json(json!({ "api_keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    name: String,
    role: Role,
    /// RFC 3339; none means the key does not expire.
    expires_at: Option<String>,
}

/// The key is in this response and nowhere else: only its digest is stored.
pub async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Body(new): Body<NewApiKey>,
) -> Result<Json<Value>, Error> {
    if new.name.trim().is_empty() || new.name.len() > 128 {
        return Err(Error::invalid("name", "a key name is 1 to 128 characters"));
    }
    let expires = time::parse("expires_at", new.expires_at.as_deref())?;
    if expires.is_some_and(|e| e <= OffsetDateTime::now_utc()) {
        return Err(Error::invalid("expires_at", "`expires_at` is in the past"));
    }
    let key = new_key();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_keys (name, prefix, key_hash, role, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&new.name)
    .bind(&key.prefix)
    .bind(key.hash.as_slice())
    .bind(new.role.as_str())
    .bind(&principal.name)
    .bind(expires)
    .fetch_one(&state.pool)
    .await?;
    audited(
        &state,
        &principal,
        ip,
        "api_key.create",
        &key.prefix,
        json!({ "role": new.role, "name": new.name }),
    )
    .await?;
    Ok(Json(json!({
        "id": id, "name": new.name, "prefix": key.prefix, "role": new.role,
        "expires_at": time::json(expires), "key": key.key,
    })))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
) -> Result<Json<Value>, Error> {
    let prefix: Option<String> = sqlx::query_scalar(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING prefix",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let prefix = prefix.ok_or(Error::NotFound)?;
    audited(
        &state,
        &principal,
        ip,
        "api_key.revoke",
        &prefix,
        json!({ "id": id }),
    )
    .await?;
    Ok(Json(json!({ "id": id, "prefix": prefix, "revoked": true })))
}
