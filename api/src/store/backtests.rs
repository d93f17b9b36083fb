//! Backtest jobs: queued here, run by a consumer's backtest worker.

use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;

use crate::Error;

/// A job as the API shows it.
#[derive(Debug)]
pub struct Row {
    pub id: i64,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub draft: Value,
    pub range_from: Option<OffsetDateTime>,
    pub range_to: Option<OffsetDateTime>,
    pub last_events: Option<i64>,
    pub status: String,
    pub cancel_requested: bool,
    pub attempts: i32,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub scanned: i64,
    pub estimated_total: Option<i64>,
    /// Seconds since it started, or that it ran.
    pub seconds: Option<f64>,
    pub result: Option<Value>,
    pub note: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
}

pub struct New<'a> {
    pub created_by: &'a str,
    pub draft: &'a Value,
    pub range_from: Option<OffsetDateTime>,
    pub range_to: Option<OffsetDateTime>,
    pub last_events: Option<i64>,
}

pub async fn insert(db: impl PgExecutor<'_>, new: New<'_>) -> Result<i64, Error> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO backtests (created_by, draft, range_from, range_to, last_events)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        new.created_by,
        new.draft,
        new.range_from,
        new.range_to,
        new.last_events
    )
    .fetch_one(db)
    .await?)
}

/// Jobs queued or running.
pub async fn pending(db: impl PgExecutor<'_>) -> Result<i64, Error> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM backtests WHERE status IN ('queued', 'running')"#
    )
    .fetch_one(db)
    .await?)
}

pub async fn get(db: impl PgExecutor<'_>, id: i64) -> Result<Option<Row>, Error> {
    Ok(sqlx::query_as!(
        Row,
        r#"SELECT id, created_by, created_at, draft, range_from, range_to, last_events, status,
                  cancel_requested, attempts, started_at, finished_at, scanned, estimated_total,
                  extract(epoch FROM COALESCE(finished_at, now()) - started_at)::float8 AS seconds,
                  result, note, expires_at
           FROM backtests WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await?)
}

/// The newest jobs first, without their results (a result can be large).
pub async fn list(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<Row>, Error> {
    Ok(sqlx::query_as!(
        Row,
        r#"SELECT id, created_by, created_at, draft, range_from, range_to, last_events, status,
                  cancel_requested, attempts, started_at, finished_at, scanned, estimated_total,
                  extract(epoch FROM COALESCE(finished_at, now()) - started_at)::float8 AS seconds,
                  NULL::jsonb AS result, note, expires_at
           FROM backtests ORDER BY id DESC LIMIT $1"#,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// Cancels a queued job, or one whose worker is gone (its lease ran out), at once; asks a
/// running one's worker to stop at its next checkpoint. `None` if there is no such job,
/// else the status it has now.
pub async fn cancel(db: impl PgExecutor<'_>, id: i64) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar!(
        "UPDATE backtests SET cancel_requested = true,
                status = CASE WHEN status = 'queued' OR lease_until < now() THEN 'cancelled'
                              ELSE status END,
                finished_at = CASE WHEN status = 'queued' OR lease_until < now() THEN now()
                                   ELSE finished_at END,
                expires_at = CASE WHEN status = 'queued' OR lease_until < now()
                                  THEN now() + interval '1 day' ELSE expires_at END
         WHERE id = $1 AND status IN ('queued', 'running')
         RETURNING status",
        id
    )
    .fetch_optional(db)
    .await?)
}

/// Deletes a finished job and its result. False if there is no finished job with that id.
pub async fn delete_finished(db: impl PgExecutor<'_>, id: i64) -> Result<bool, Error> {
    Ok(sqlx::query!(
        "DELETE FROM backtests WHERE id = $1 AND status IN ('done', 'cancelled', 'failed')",
        id
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}
