use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;
use crate::trace::ErrorCause;
use crate::MIGRATOR;

/// A database that does not answer within this is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process serves requests. Says nothing about dependencies.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and its schema is the one this build expects.
/// Not ready is a 503, logged once by the request span with the reason.
pub async fn ready(State(state): State<AppState>) -> Response {
    use flagstream_migrations::Error as Schema;
    let expected = MIGRATOR.iter().count();
    let checked =
        tokio::time::timeout(CHECK_TIMEOUT, flagstream_migrations::check(&state.pool)).await;
    let mut unreachable = None;
    let (database, migrations) = match checked {
        Err(_) => (
            json!({"status": "down", "error": "timed out"}),
            json!({"status": "unknown"}),
        ),
        Ok(Ok(status)) => (
            json!({"status": "ok"}),
            json!({"status": "ok", "applied": status.applied, "expected": expected}),
        ),
        Ok(Err(Schema::Behind { applied, .. })) => (
            json!({"status": "ok"}),
            json!({"status": "pending", "applied": applied, "expected": expected}),
        ),
        Ok(Err(Schema::Database(e))) => {
            // The driver's message stays in the log: this endpoint is open to anyone.
            unreachable = Some(e.to_string());
            (
                json!({"status": "down", "error": "unreachable"}),
                json!({"status": "unknown"}),
            )
        }
        // Newer, failed or altered: this build must not serve it; the message says why.
        Ok(Err(e)) => (
            json!({"status": "ok"}),
            json!({"status": "mismatch", "error": e.to_string()}),
        ),
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
    let cause = (!ready).then(|| match unreachable {
        Some(e) => format!("database unreachable: {e}"),
        None => format!("not ready: {}", body["checks"]),
    });
    let mut response = (code, Json(body)).into_response();
    if let Some(cause) = cause {
        response.extensions_mut().insert(ErrorCause(cause));
    }
    response
}
