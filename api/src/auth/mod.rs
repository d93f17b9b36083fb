//! Who is calling and what they may do: users (login tokens) and API keys, each with a role.
//!
//! Routes declare their minimum role in the route table (`routes/mod.rs`); [`authorize`]
//! enforces it, so a handler never runs for a caller without the role.

mod apikey;
mod jwt;
mod limiter;
mod password;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub use apikey::{hash_key, new_key, NewKey};
pub use jwt::Jwt;
pub use limiter::LoginLimiter;
pub use password::{hash_password, verify_password, MIN_PASSWORD_LEN};

use crate::state::AppState;
use crate::store::users as store;
use crate::Error;

/// Roles, least to most privileged: each can do everything the ones before it can.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Principal {
    /// The username, or `key:<prefix>` for an API key.
    pub name: String,
    pub role: Role,
    pub kind: &'static str,
}

/// Authenticates the request and checks `role`; the principal is then an extension.
pub async fn authorize(role: Role, mut request: Request, next: Next) -> Response {
    let Some(state) = request.extensions().get::<AppState>().cloned() else {
        return Error::Internal("application state missing".into()).into_response();
    };
    let principal = match authenticate(&state, request.headers()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if let Some(limiter) = &state.rate_per_credential {
        if let Err(retry_after) = limiter.take(&principal.name) {
            state
                .metrics
                .rate_limited
                .get_or_create(&vec![("scope", "credential".into())])
                .inc();
            return Error::TooManyRequests { retry_after }.into_response();
        }
    }
    if principal.role < role {
        return Error::Forbidden(role.as_str()).into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The per-address rate limit, on every request (logins and unknown paths included).
pub async fn limit_client(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let (Some(limiter), Some(ip)) = (&state.rate_per_ip, ip) {
        if let Err(retry_after) = limiter.take(&ip.to_string()) {
            state
                .metrics
                .rate_limited
                .get_or_create(&vec![("scope", "ip".into())])
                .inc();
            return Error::TooManyRequests { retry_after }.into_response();
        }
    }
    next.run(request).await
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, Error> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let presented = header("x-api-key")
        .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(Error::Unauthorized)?;
    if apikey::looks_like_key(presented) {
        let row = store::key_by_hash(&state.pool, hash_key(presented).as_slice()).await?;
        let (prefix, role) = row.ok_or(Error::Unauthorized)?;
        return Ok(Principal {
            name: format!("key:{prefix}"),
            role: Role::parse(&role).ok_or(Error::Unauthorized)?,
            kind: "api_key",
        });
    }
    let claims = state.jwt.verify(presented).ok_or(Error::Unauthorized)?;
    // The role and the account's state come from the database, not the token, so a
    // disabled user, a changed role or a changed password takes effect at once.
    let role = store::session_role(&state.pool, &claims.sub, claims.gen).await?;
    Ok(Principal {
        name: claims.sub,
        role: role
            .as_deref()
            .and_then(Role::parse)
            .ok_or(Error::Unauthorized)?,
        kind: "user",
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Error> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Error::Internal("route registered without a role".into()))
    }
}

/// The peer address of the connection, when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
