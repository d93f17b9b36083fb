//! The backtest jobs' rows: claimed with a lease, checkpointed and finished only by the
//! worker holding the lease, so a worker that lost its job (it stalled and another took
//! over) can never write a second count.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::Error;

/// A claimed job, with what earlier attempts checkpointed.
#[derive(Debug)]
pub struct Job {
    pub id: i64,
    pub draft: Value,
    pub range_from: Option<OffsetDateTime>,
    pub range_to: Option<OffsetDateTime>,
    pub last_events: Option<i64>,
    pub plan: Option<Value>,
    pub positions: Option<Value>,
    pub tally: Option<Value>,
    pub attempts: i32,
    /// Why the previous attempt stopped, if it failed.
    pub note: Option<String>,
}

/// The oldest queued job, or a running one whose worker's lease ran out.
pub async fn claim(pool: &PgPool, worker: &str, lease: Duration) -> Result<Option<Job>, Error> {
    Ok(sqlx::query_as!(
        Job,
        "UPDATE backtests SET status = 'running', worker = $1,
                lease_until = now() + make_interval(secs => $2), attempts = attempts + 1,
                started_at = COALESCE(started_at, now())
         WHERE id = (SELECT id FROM backtests
                     WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, draft, range_from, range_to, last_events, plan, positions, tally,
                   attempts, note",
        worker,
        lease.as_secs_f64()
    )
    .fetch_optional(pool)
    .await?)
}

/// What a checkpoint stores: where to resume and what was counted up to there.
pub struct Checkpoint {
    pub plan: Value,
    pub positions: Value,
    pub tally: Value,
    pub scanned: i64,
    pub estimated_total: i64,
}

/// Stores a checkpoint and renews the lease. `None` when the job is no longer this
/// worker's; otherwise whether a cancel was asked for.
pub async fn checkpoint(
    pool: &PgPool,
    id: i64,
    worker: &str,
    lease: Duration,
    c: &Checkpoint,
) -> Result<Option<bool>, Error> {
    Ok(sqlx::query_scalar!(
        "UPDATE backtests SET plan = $3, positions = $4, tally = $5, scanned = $6,
                estimated_total = $7, lease_until = now() + make_interval(secs => $8)
         WHERE id = $1 AND worker = $2 AND status = 'running'
         RETURNING cancel_requested",
        id,
        worker,
        &c.plan,
        &c.positions,
        &c.tally,
        c.scanned,
        c.estimated_total,
        lease.as_secs_f64()
    )
    .fetch_optional(pool)
    .await?)
}

/// How a job ends.
pub struct End<'a> {
    pub status: &'static str,
    pub result: Option<&'a Value>,
    pub note: Option<&'a str>,
    pub retention_days: u32,
}

/// Ends the job, with its last checkpoint in the same statement. False when the job is no
/// longer this worker's.
pub async fn finish(
    pool: &PgPool,
    id: i64,
    worker: &str,
    c: &Checkpoint,
    end: &End<'_>,
) -> Result<bool, Error> {
    let updated = sqlx::query!(
        "UPDATE backtests SET plan = $3, positions = $4, tally = $5, scanned = $6,
                estimated_total = $7, status = $8, result = $9, note = $10,
                finished_at = now(), lease_until = NULL,
                expires_at = now() + make_interval(days => $11)
         WHERE id = $1 AND worker = $2 AND status = 'running'",
        id,
        worker,
        &c.plan,
        &c.positions,
        &c.tally,
        c.scanned,
        c.estimated_total,
        end.status,
        end.result,
        end.note,
        i32::try_from(end.retention_days).unwrap_or(i32::MAX)
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Fails a job that cannot run (its draft no longer compiles, the topic is gone).
pub async fn fail(
    pool: &PgPool,
    id: i64,
    worker: &str,
    why: &str,
    retention_days: u32,
) -> Result<(), Error> {
    sqlx::query!(
        "UPDATE backtests SET status = 'failed', note = $3, finished_at = now(),
                lease_until = NULL, expires_at = now() + make_interval(days => $4)
         WHERE id = $1 AND worker = $2 AND status = 'running'",
        id,
        worker,
        why,
        i32::try_from(retention_days).unwrap_or(i32::MAX)
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records why an attempt failed; the job is retried once its lease runs out.
pub async fn note(pool: &PgPool, id: i64, worker: &str, why: &str) -> Result<(), Error> {
    sqlx::query!(
        "UPDATE backtests SET note = $3 WHERE id = $1 AND worker = $2 AND status = 'running'",
        id,
        worker,
        why
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes the results kept past their days.
pub async fn expire(pool: &PgPool) -> Result<u64, Error> {
    Ok(
        sqlx::query!("DELETE FROM backtests WHERE expires_at < now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
