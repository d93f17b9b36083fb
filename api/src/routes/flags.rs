use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::types::Json as SqlJson;
use time::OffsetDateTime;

use crate::auth::Reader;
use crate::state::AppState;
use crate::Error;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Flag {
    id: i64,
    event_id: String,
    #[serde(with = "time::serde::rfc3339")]
    event_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    ingested_at: OffsetDateTime,
    src_ip: String,
    provider: String,
    model: String,
    endpoint: Option<String>,
    method: Option<String>,
    status_code: Option<i32>,
    duration_ms: Option<i64>,
    score: i16,
    severity: String,
    status: String,
    detections: SqlJson<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct FlagList {
    flags: Vec<Flag>,
}

/// Newest flags first, each with its detections (redacted excerpts only, never content).
pub async fn list(
    _: Reader,
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<FlagList>, Error> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::Invalid {
            field: Some("limit"),
            message: format!("limit must be between 1 and {MAX_LIMIT}, got {limit}"),
        });
    }
    let flags = sqlx::query_as::<_, Flag>(
        "SELECT f.id, f.event_id, f.event_time, f.ingested_at, host(f.src_ip) AS src_ip,
                f.provider, f.model, f.endpoint, f.method, f.status_code, f.duration_ms,
                f.score, f.severity, f.status,
                COALESCE((SELECT json_agg(json_build_object(
                              'rule_id', d.rule_id, 'rule_version', d.rule_version,
                              'field', d.field, 'start', d.span_start, 'end', d.span_end,
                              'excerpt', d.excerpt, 'detector', d.detector,
                              'decoded_from', d.decoded_from, 'shadow', d.shadow) ORDER BY d.id)
                          FROM detections d WHERE d.flag_id = f.id), '[]'::json) AS detections
         FROM flags f
         ORDER BY f.event_time DESC, f.id DESC
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(FlagList { flags }))
}
