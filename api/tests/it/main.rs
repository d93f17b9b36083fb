//! The API router in-process against real PostgreSQL.
#![allow(clippy::unwrap_used)]

mod flags;
mod health;

use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flagstream_api::state::AppState;
use flagstream_api::{router, TokenDigest, MIGRATOR};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use tower::ServiceExt;

pub const TOKEN: &str = "test-token-0123456789abcdef0123456789abcdef";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh database on the cluster `scripts/test` starts; migrated when asked.
pub async fn database(migrated: bool) -> PgPool {
    let admin = std::env::var("FLAGSTREAM_TEST_DATABASE_URL").expect(
        "FLAGSTREAM_TEST_DATABASE_URL is not set: run the suite with scripts/test, which starts PostgreSQL",
    );
    let name = format!(
        "fs_api_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect to the test cluster");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
    let pool = PgPool::connect(&format!("{base}/{name}"))
        .await
        .expect("connect");
    if migrated {
        MIGRATOR.run(&pool).await.expect("migrate");
    }
    pool
}

pub fn state(pool: PgPool) -> AppState {
    AppState {
        pool,
        token: TokenDigest::new(TOKEN).expect("valid token"),
    }
}

/// Sends one request through the router and returns the status and JSON body.
pub async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let response = router(state.clone())
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("router never fails");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{method} {uri}: body is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, body)
}
