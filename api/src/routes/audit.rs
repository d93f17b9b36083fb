use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{Postgres, QueryBuilder};
use time::OffsetDateTime;

use crate::extract::Params;
use crate::state::AppState;
use crate::Error;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    action: Option<String>,
    actor: Option<String>,
    /// Entries older than this id (the `next_before` of the previous page).
    before: Option<i64>,
    limit: Option<i64>,
}

#[derive(Serialize, sqlx::FromRow)]
pub struct Row {
    id: i64,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    actor: String,
    action: String,
    target: Option<String>,
    success: bool,
    ip: Option<String>,
    details: sqlx::types::Json<Value>,
}

/// Newest first, by id, so pages stay exact while entries are added.
pub async fn list(
    State(state): State<AppState>,
    Params(q): Params<AuditQuery>,
) -> Result<Json<Value>, Error> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(Error::invalid("limit", "limit must be between 1 and 1000"));
    }
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT id, at, actor, action, target, success, host(ip) AS ip, details FROM audit_log WHERE true",
    );
    if let Some(a) = &q.action {
        qb.push(" AND action = ").push_bind(a.clone());
    }
    if let Some(a) = &q.actor {
        qb.push(" AND actor = ").push_bind(a.clone());
    }
    if let Some(b) = q.before {
        qb.push(" AND id < ").push_bind(b);
    }
    qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    let rows: Vec<Row> = qb.build_query_as().fetch_all(&state.pool).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(json!({ "entries": rows, "next_before": next })))
}
