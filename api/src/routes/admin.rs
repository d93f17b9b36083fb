//! Users and API keys, for admins. Every change is audited.

use ::time::OffsetDateTime;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

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

pub async fn list_users(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let users: Vec<Value> = store::list(&state.pool)
        .await?
        .into_iter()
        .map(|u| {
            json!({ "username": u.username, "role": u.role, "disabled": u.disabled,
                    "created_at": time::json(Some(u.created_at)) })
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
    Ok(Json(
        json!({ "username": username, "role": role, "disabled": disabled }),
    ))
}

pub async fn list_keys(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let keys: Vec<Value> = store::keys(&state.pool)
        .await?
        .into_iter()
        .map(|k| {
            json!({ "id": k.id, "name": k.name, "prefix": k.prefix, "role": k.role,
                    "created_by": k.created_by, "created_at": time::json(Some(k.created_at)),
                    "expires_at": time::json(k.expires_at), "revoked_at": time::json(k.revoked_at) })
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
    Ok(Json(json!({ "id": id, "prefix": prefix, "revoked": true })))
}
