use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;
use crate::trace::ErrorCause;
use crate::MIGRATOR;

/// A database that does not answer within this is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// Liveness: the process serves requests. Says nothing about dependencies.
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The readiness report; a 503 carries it too, with what is not ready.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    version: &'static str,
    checks: Checks,
}

#[derive(Serialize, ToSchema)]
pub struct Checks {
    database: Check,
    migrations: Check,
}

#[derive(Serialize, ToSchema)]
pub struct Check {
    /// `ok`, `down`, `unknown`, `pending` or `mismatch`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<usize>,
}

impl Check {
    fn status(status: &'static str) -> Check {
        Check {
            status,
            error: None,
            applied: None,
            expected: None,
        }
    }

    fn error(status: &'static str, error: impl Into<String>) -> Check {
        Check {
            error: Some(error.into()),
            ..Check::status(status)
        }
    }

    fn counts(status: &'static str, applied: usize, expected: usize) -> Check {
        Check {
            applied: Some(applied),
            expected: Some(expected),
            ..Check::status(status)
        }
    }
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
        Err(_) => (Check::error("down", "timed out"), Check::status("unknown")),
        Ok(Ok(status)) => (
            Check::status("ok"),
            Check::counts("ok", status.applied, expected),
        ),
        Ok(Err(Schema::Behind { applied, .. })) => (
            Check::status("ok"),
            Check::counts("pending", applied, expected),
        ),
        Ok(Err(Schema::Database(e))) => {
            // The driver's message stays in the log: this endpoint is open to anyone.
            unreachable = Some(e.to_string());
            (
                Check::error("down", "unreachable"),
                Check::status("unknown"),
            )
        }
        // Newer, failed or altered: this build must not serve it; the message says why.
        Ok(Err(e)) => (Check::status("ok"), Check::error("mismatch", e.to_string())),
    };
    let ready = database.status == "ok" && migrations.status == "ok";
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        version: env!("CARGO_PKG_VERSION"),
        checks: Checks {
            database,
            migrations,
        },
    };
    let cause = (!ready).then(|| match unreachable {
        Some(e) => format!("database unreachable: {e}"),
        None => format!(
            "not ready: {}",
            serde_json::to_string(&body.checks).unwrap_or_default()
        ),
    });
    let mut response = (code, Json(body)).into_response();
    if let Some(cause) = cause {
        response.extensions_mut().insert(ErrorCause(cause));
    }
    response
}
