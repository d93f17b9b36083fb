use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;
use crate::MIGRATOR;

/// A database that does not answer within this is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process serves requests. Says nothing about dependencies.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and every migration this build expects is applied.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let applied = tokio::time::timeout(
        CHECK_TIMEOUT,
        sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&state.pool),
    )
    .await;
    let expected: BTreeSet<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    let (database, migrations) = match applied {
        Err(_) => (
            json!({"status": "down", "error": "timed out"}),
            json!({"status": "unknown"}),
        ),
        // A missing migrations table means a reachable, unmigrated database.
        Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("42P01") => (
            json!({"status": "ok"}),
            json!({"status": "pending", "applied": 0, "expected": expected.len()}),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                json!({"status": "down", "error": "unreachable"}),
                json!({"status": "unknown"}),
            )
        }
        Ok(Ok(versions)) => {
            let applied: BTreeSet<i64> = versions.into_iter().collect();
            let missing = expected.difference(&applied).count();
            let status = if missing == 0 { "ok" } else { "pending" };
            (
                json!({"status": "ok"}),
                json!({"status": status, "applied": applied.len(), "expected": expected.len()}),
            )
        }
    };
    let ready = database["status"] == "ok" && migrations["status"] == "ok";
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "version": env!("CARGO_PKG_VERSION"),
        "checks": { "database": database, "migrations": migrations },
    });
    (code, Json(body))
}
