//! Users and API keys, for admins. Every change is audited.

use ::time::OffsetDateTime;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::time;
use crate::auth::{hash_password, new_key, ClientIp, Principal, Role};
use crate::extract::{Body, Path};
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::users as store;
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

#[derive(Serialize, ToSchema)]
pub struct Users {
    users: Vec<User>,
}

#[derive(Serialize, ToSchema)]
pub struct User {
    username: String,
    role: String,
    disabled: bool,
    /// Absent in the answer to a change.
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
}

pub async fn list_users(State(state): State<AppState>) -> Result<Json<Users>, Error> {
    let users = store::list(&state.pool)
        .await?
        .into_iter()
        .map(|u| User {
            username: u.username,
            role: u.role,
            disabled: u.disabled,
            created_at: Some(time::format(u.created_at)),
        })
        .collect();
    Ok(Json(Users { users }))
}

#[derive(Deserialize, ToSchema)]
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
) -> Result<Json<User>, Error> {
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
    Ok(Json(User {
        username: user.username,
        role: user.role.as_str().to_owned(),
        disabled: false,
        created_at: None,
    }))
}

#[derive(Deserialize, ToSchema)]
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
) -> Result<Json<User>, Error> {
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
        let admins = store::lock_admins(&mut *tx).await?;
        if admins == [username.as_str()] {
            return Err(Error::Conflict(format!(
                "`{username}` is the last enabled admin; make another admin first"
            )));
        }
    }
    let stored_change = store::UserChange {
        role: change.role.map(Role::as_str),
        disabled: change.disabled,
        password_hash: hash.as_deref(),
    };
    let row = store::update(&mut *tx, &username, stored_change).await?;
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
    Ok(Json(User {
        username,
        role,
        disabled,
        created_at: None,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeys {
    api_keys: Vec<ApiKey>,
}

/// A key as listed: its prefix, never the key.
#[derive(Serialize, ToSchema)]
pub struct ApiKey {
    id: i64,
    name: String,
    prefix: String,
    role: String,
    created_by: String,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
}

pub async fn list_keys(State(state): State<AppState>) -> Result<Json<ApiKeys>, Error> {
    let api_keys = store::keys(&state.pool)
        .await?
        .into_iter()
        .map(|k| ApiKey {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            role: k.role,
            created_by: k.created_by,
            created_at: time::format(k.created_at),
            expires_at: k.expires_at.map(time::format),
            revoked_at: k.revoked_at.map(time::format),
        })
        .collect();
    Ok(Json(ApiKeys { api_keys }))
}

#[derive(Deserialize, ToSchema)]
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
) -> Result<Json<CreatedKey>, Error> {
    if new.name.trim().is_empty() || new.name.len() > 128 {
        return Err(Error::invalid("name", "a key name is 1 to 128 characters"));
    }
    let expires = time::parse("expires_at", new.expires_at.as_deref())?;
    if expires.is_some_and(|e| e <= OffsetDateTime::now_utc()) {
        return Err(Error::invalid("expires_at", "`expires_at` is in the past"));
    }
    let key = new_key();
    let stored = store::NewApiKey {
        name: &new.name,
        prefix: &key.prefix,
        hash: key.hash.as_slice(),
        role: new.role.as_str(),
        created_by: &principal.name,
        expires_at: expires,
    };
    let id = store::insert_key(&state.pool, stored).await?;
    audited(
        &state,
        &principal,
        ip,
        "api_key.create",
        &key.prefix,
        json!({ "role": new.role, "name": new.name }),
    )
    .await?;
    Ok(Json(CreatedKey {
        id,
        name: new.name,
        prefix: key.prefix,
        role: new.role,
        expires_at: expires.map(time::format),
        key: key.key,
    }))
}

/// A new key: the only time the key itself is shown.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    id: i64,
    name: String,
    prefix: String,
    role: Role,
    expires_at: Option<String>,
    key: String,
}

#[derive(Serialize, ToSchema)]
pub struct RevokedKey {
    id: i64,
    prefix: String,
    revoked: bool,
}

pub async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
) -> Result<Json<RevokedKey>, Error> {
    let prefix = store::revoke_key(&state.pool, id)
        .await?
        .ok_or(Error::NotFound)?;
    audited(
        &state,
        &principal,
        ip,
        "api_key.revoke",
        &prefix,
        json!({ "id": id }),
    )
    .await?;
    Ok(Json(RevokedKey {
        id,
        prefix,
        revoked: true,
    }))
}
