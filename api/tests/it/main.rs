//! The API router in-process against real PostgreSQL.
#![allow(clippy::unwrap_used)]

mod abuse;
mod alerts;
mod auth;
mod backtests;
mod deliveries;
mod destinations;
mod flags;
mod health;
mod matrix;
mod quality;
mod rules;
mod schema;
mod stats;
mod trace;
mod triage;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::Router;
use clap::Parser as _;
use flagstream_api::auth::Role;
use flagstream_api::state::AppState;
use flagstream_api::{router, Cli, Config, Hardening, MIGRATOR};
use flagstream_service::test_support;
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;

pub const JWT_SECRET: &str = "test-only-jwt-secret-0123456789abcdef0123";
/// A content key for tests (32 bytes, base64); the consumer's tests use the same one.
pub const TEST_KEY: &str = "dGVzdC1vbmx5LWtleS1mbGFnc3RyZWFtLTMyYnl0ZXM=";

/// A fresh database on the cluster `scripts/test` starts; migrated when asked.
pub async fn database(migrated: bool) -> PgPool {
    database_with_url(migrated).await.0
}

pub async fn database_with_url(migrated: bool) -> (PgPool, String) {
    let db = if migrated {
        test_support::fresh_database(&MIGRATOR).await
    } else {
        test_support::empty_database().await
    };
    (db.pool, db.url)
}

/// Config as the binary would parse it, plus `extra` flags.
pub fn config(extra: &[&str]) -> Config {
    let mut args = vec![
        "flagstream-api",
        "--database-url",
        "postgres://unused",
        "--jwt-secret-key",
        JWT_SECRET,
        "--encryption-key",
        TEST_KEY,
    ];
    args.extend_from_slice(extra);
    Cli::try_parse_from(args).unwrap().config
}

pub struct Api {
    pub state: AppState,
    router: Router,
}

impl Api {
    /// A migrated database with one user per role, named after the role.
    pub async fn new() -> Api {
        Api::with_users(&[]).await
    }

    /// As [`Api::new`], with `extra` configuration flags.
    pub async fn with_users(extra: &[&str]) -> Api {
        let api = Api::with_pool(database(true).await, extra);
        for role in [Role::Viewer, Role::Analyst, Role::Admin] {
            sqlx::query(
                "INSERT INTO users (username, password_hash, role) VALUES ($1, 'no-login', $1)",
            )
            .bind(role.as_str())
            .execute(&api.state.pool)
            .await
            .unwrap();
        }
        api
    }

    pub fn with_pool(pool: PgPool, extra: &[&str]) -> Api {
        let config = config(extra);
        let state = AppState::new(pool, &config).unwrap();
        Api::from_state(state, &flagstream_api::hardening(&config))
    }

    pub fn from_state(state: AppState, hardening: &Hardening) -> Api {
        let router = router(state.clone(), hardening).unwrap();
        Api { state, router }
    }

    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// A login token for the user named after `role`.
    pub fn token(&self, role: Role) -> String {
        self.state.jwt.issue(role.as_str(), role, 0).unwrap().0
    }

    pub async fn send(&self, request: Request<Body>) -> Response {
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// One request with an optional bearer credential and JSON body; status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_from(None, method, uri, bearer, body).await
    }

    /// As [`Api::call`], from the client address `ip` when given (as a server started with
    /// connect info sees it).
    pub async fn call_from(
        &self,
        ip: Option<&str>,
        method: &str,
        uri: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(ip) = ip {
            let addr = std::net::SocketAddr::new(ip.parse().unwrap(), 40_000);
            request = request.extension(axum::extract::ConnectInfo(addr));
        }
        if let Some(t) = bearer {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                request = request.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let response = self.send(request.body(body).unwrap()).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{method} {uri}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, body)
    }

    /// `POST /api/v1/auth/login`: the status and body.
    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let body = serde_json::json!({ "username": username, "password": password });
        self.call("POST", "/api/v1/auth/login", None, Some(body))
            .await
    }

    /// As [`Api::call`] with the token of `role`.
    pub async fn as_role(
        &self,
        role: Role,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, uri, Some(&self.token(role)), body).await
    }
}

/// A response body as text.
pub async fn text(response: Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Inserts `n` flags, one a minute from 2026-11-22T00:00Z, each with one detection; odd
/// ones are `critical` from 10.0.0.x, even ones `high` from 192.168.0.x.
pub async fn seed_flags(pool: &PgPool, n: i64) {
    sqlx::query(
        "INSERT INTO flags (event_id, event_time, src_ip, provider, model, score, severity,
                            categories, user_id, app, kafka_topic, kafka_partition, kafka_offset)
         SELECT 'ev-' || i, '2026-11-22T00:00:00Z'::timestamptz + i * interval '1 minute',
                (CASE WHEN i % 2 = 1 THEN '10.0.0.' ELSE '192.168.0.' END || (i % 250))::inet,
                CASE WHEN i % 3 = 0 THEN 'anthropic' ELSE 'openai' END,
                CASE WHEN i % 3 = 0 THEN 'claude-3-opus-20240229' ELSE 'gpt-4o' END,
                CASE WHEN i % 2 = 1 THEN 90 ELSE 40 END,
                CASE WHEN i % 2 = 1 THEN 'critical' ELSE 'high' END,
                CASE WHEN i % 2 = 1 THEN ARRAY['secrets'] ELSE ARRAY['pii'] END,
                'user-' || (i % 5), 'app-' || (i % 2), 't', 0, i
         FROM generate_series(1, $1) AS i",
    )
    .bind(n)
    .execute(pool)
    .await
    .expect("seed flags");
    sqlx::query(
        "INSERT INTO detections (flag_id, rule_id, field, span_start, span_end, excerpt)
         SELECT id, CASE WHEN severity = 'critical' THEN 'secret.aws' ELSE 'pii.email' END,
                'prompt', 3, 11, 'my ke****** is ' || event_id FROM flags",
    )
    .execute(pool)
    .await
    .expect("seed detections");
}
