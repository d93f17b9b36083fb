use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{verify_password, ClientIp, Principal, Role};
use crate::extract::Body;
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::users as store;
use crate::{users, Error};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// Every failure looks the same to the caller (401), whatever the reason; the audit log
/// records which it was.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(login): Body<Login>,
) -> Result<Json<Session>, Error> {
    // Only a name that could exist is looked up or audited, so the audit log cannot be
    // filled with junk by someone without an account.
    users::check_username(&login.username)?;
    let failure = |reason: &'static str| Entry {
        actor: &login.username,
        action: "login",
        target: None,
        success: false,
        ip,
        details: json!({ "reason": reason }),
    };
    if let Err(refused) = state.limiter.check(ip, &login.username) {
        state.metrics.login_failures.inc();
        if refused.first {
            audit::record(&state.pool, failure("throttled")).await?;
        }
        return Err(Error::TooManyRequests {
            retry_after: refused.retry_after,
        });
    }
    let user = store::credentials(&state.pool, &login.username).await?;
    let (hash, role, disabled, generation) = match user {
        Some(c) => (
            Some(c.password_hash),
            Role::parse(&c.role),
            c.disabled,
            c.token_generation,
        ),
        None => (None, None, false, 0),
    };
    let known = hash.is_some();
    let verified = verify_password(login.password.clone(), hash).await?;
    let role = match (verified, disabled, role) {
        (true, false, Some(role)) => role,
        _ => {
            state.limiter.failed(ip, &login.username);
            state.metrics.login_failures.inc();
            let reason = match (known, verified) {
                (false, _) => "unknown_user",
                (true, false) => "wrong_password",
                (true, true) => "disabled",
            };
            audit::record(&state.pool, failure(reason)).await?;
            return Err(Error::Unauthorized);
        }
    };
    state.limiter.succeeded(ip, &login.username);
    let (token, expires_at) = state.jwt.issue(&login.username, role, generation)?;
    audit::record(
        &state.pool,
        Entry {
            actor: &login.username,
            action: "login",
            target: None,
            success: true,
            ip,
            details: json!({}),
        },
    )
    .await?;
    Ok(Json(Session {
        token,
        token_type: "Bearer",
        expires_at,
        role,
    }))
}

/// A login's token.
#[derive(Serialize, ToSchema)]
pub struct Session {
    token: String,
    token_type: &'static str,
    /// Unix time, in seconds.
    expires_at: u64,
    role: Role,
}

pub async fn me(principal: Principal) -> Json<Principal> {
    Json(principal)
}
