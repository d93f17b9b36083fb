//! The alert delivery log (`alert_deliveries`), written by the consumer's dispatcher.

use serde::Serialize;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use crate::Error;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub key: String,
    pub route_id: String,
    pub route_version: i32,
    pub destination_id: String,
    pub destination_kind: String,
    pub group_key: String,
    pub flag_ids: Vec<i64>,
    pub suppressed: i64,
    pub status: String,
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub flagged_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    pub latency_ms: Option<i64>,
}

/// Which deliveries to list; None matches any.
pub struct Filter<'a> {
    pub status: Option<&'a str>,
    pub route: Option<&'a str>,
    pub destination: Option<&'a str>,
    /// Only deliveries older than this id.
    pub before: Option<i64>,
}

/// At most `limit` deliveries matching `filter`, newest first by id.
pub async fn list(pool: &PgPool, filter: Filter<'_>, limit: i64) -> Result<Vec<Delivery>, Error> {
    Ok(sqlx::query_as!(
        Delivery,
        "SELECT id, key, route_id, route_version, destination_id, destination_kind, group_key,
                flag_ids, suppressed, status, attempts, next_attempt_at, last_status, last_error,
                flagged_at, created_at, sent_at, latency_ms
         FROM alert_deliveries
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::text IS NULL OR route_id = $2)
           AND ($3::text IS NULL OR destination_id = $3)
           AND ($4::bigint IS NULL OR id < $4)
         ORDER BY id DESC LIMIT $5",
        filter.status,
        filter.route,
        filter.destination,
        filter.before,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Status and attempts, locked until the transaction ends.
pub async fn lock_status(db: impl PgExecutor<'_>, id: i64) -> Result<Option<(String, i32)>, Error> {
    let row = sqlx::query!(
        "SELECT status, attempts FROM alert_deliveries WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.status, r.attempts)))
}

/// Queues the delivery again from its first attempt.
pub async fn requeue(db: impl PgExecutor<'_>, id: i64) -> Result<Delivery, Error> {
    Ok(sqlx::query_as!(
        Delivery,
        "UPDATE alert_deliveries
         SET status = 'pending', attempts = 0, next_attempt_at = now(), lease_until = NULL,
             last_error = NULL
         WHERE id = $1
         RETURNING id, key, route_id, route_version, destination_id, destination_kind,
                   group_key, flag_ids, suppressed, status, attempts, next_attempt_at,
                   last_status, last_error, flagged_at, created_at, sent_at, latency_ms",
        id
    )
    .fetch_one(db)
    .await?)
}
