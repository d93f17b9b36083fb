//! The `rules` table and its history (`rule_versions`, appended by a trigger).

use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use crate::Error;

pub struct Stored {
    pub definition: Value,
    pub updated_at: OffsetDateTime,
    pub updated_by: Option<String>,
}

pub struct Version {
    pub seq: i64,
    pub changed_at: OffsetDateTime,
    pub changed_by: Option<String>,
    /// None: the version records a deletion.
    pub definition: Option<Value>,
}

/// Serializes rule changes for the rest of the transaction, so two cannot both pass the
/// set's bounds.
pub async fn lock_set(db: impl PgExecutor<'_>) -> Result<(), Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('flagstream.rules'))")
        .execute(db)
        .await?;
    Ok(())
}

/// How many rules, and keywords in them, the set holds besides rule `id`.
pub async fn size_without(db: impl PgExecutor<'_>, id: &str) -> Result<(i64, i64), Error> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "rules!",
                  COALESCE(sum(CASE WHEN jsonb_typeof(definition->'keywords') = 'array'
                                    THEN jsonb_array_length(definition->'keywords') END), 0)::bigint
                      AS "keywords!"
           FROM rules WHERE id <> $1"#,
        id
    )
    .fetch_one(db)
    .await?;
    Ok((row.rules, row.keywords))
}

pub async fn list(pool: &PgPool) -> Result<Vec<Stored>, Error> {
    Ok(sqlx::query_as!(
        Stored,
        "SELECT definition, updated_at, updated_by FROM rules ORDER BY id"
    )
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &PgPool, id: &str) -> Result<Option<Stored>, Error> {
    Ok(sqlx::query_as!(
        Stored,
        "SELECT definition, updated_at, updated_by FROM rules WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?)
}

/// Every stored definition with its id, as the consumer would load them.
pub async fn definitions(pool: &PgPool) -> Result<Vec<(String, Value)>, Error> {
    let rows = sqlx::query!("SELECT id, definition FROM rules ORDER BY id")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.definition)).collect())
}

/// The current definition, locked for the rest of the transaction.
pub async fn lock_current(db: impl PgExecutor<'_>, id: &str) -> Result<Option<Value>, Error> {
    Ok(
        sqlx::query_scalar!("SELECT definition FROM rules WHERE id = $1 FOR UPDATE", id)
            .fetch_optional(db)
            .await?,
    )
}

/// The highest version the rule ever had, deleted ones included.
pub async fn last_version(db: impl PgExecutor<'_>, id: &str) -> Result<Option<i64>, Error> {
    Ok(sqlx::query_scalar!(
        "SELECT max((definition->>'version')::bigint) FROM rule_versions WHERE rule_id = $1",
        id
    )
    .fetch_one(db)
    .await?)
}

pub async fn upsert(
    db: impl PgExecutor<'_>,
    id: &str,
    definition: &Value,
    by: &str,
) -> Result<(), Error> {
    sqlx::query!(
        "INSERT INTO rules (id, definition, updated_at, updated_by) VALUES ($1, $2, now(), $3)
         ON CONFLICT (id) DO UPDATE
         SET definition = EXCLUDED.definition, updated_at = now(), updated_by = EXCLUDED.updated_by",
        id,
        definition,
        by
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Signs the row so the trigger records who deleted it.
pub async fn sign(db: impl PgExecutor<'_>, id: &str, by: &str) -> Result<(), Error> {
    sqlx::query!("UPDATE rules SET updated_by = $2 WHERE id = $1", id, by)
        .execute(db)
        .await?;
    Ok(())
}

/// True when the rule existed.
pub async fn delete(db: impl PgExecutor<'_>, id: &str) -> Result<bool, Error> {
    let done = sqlx::query!("DELETE FROM rules WHERE id = $1", id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn versions(pool: &PgPool, id: &str) -> Result<Vec<Version>, Error> {
    Ok(sqlx::query_as!(
        Version,
        "SELECT seq, changed_at, changed_by, definition FROM rule_versions
         WHERE rule_id = $1 ORDER BY seq DESC",
        id
    )
    .fetch_all(pool)
    .await?)
}

/// One version by `seq`: None when there is no such version, Some(None) for a deletion.
pub async fn version(pool: &PgPool, id: &str, seq: i64) -> Result<Option<Option<Value>>, Error> {
    let row = sqlx::query!(
        "SELECT definition FROM rule_versions WHERE rule_id = $1 AND seq = $2",
        id,
        seq
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.definition))
}

/// The flags a rule version contributed to, and their triage verdicts. A flag's verdict is
/// its status when that is true or false positive; for a resolved flag, the last of those
/// its history holds; a flag reopened for triage has none.
pub struct Verdicts {
    pub flags: i64,
    pub true_positive: i64,
    pub false_positive: i64,
}

pub async fn verdicts(db: impl PgExecutor<'_>, id: &str, version: i32) -> Result<Verdicts, Error> {
    Ok(sqlx::query_as!(
        Verdicts,
        r#"WITH hit AS (
               SELECT DISTINCT flag_id FROM detections WHERE rule_id = $1 AND rule_version = $2
           ), verdict AS (
               SELECT CASE
                          WHEN f.status IN ('true_positive', 'false_positive') THEN f.status
                          WHEN f.status = 'resolved' THEN (
                              SELECT h.status_to FROM flag_history h
                              WHERE h.flag_id = f.id
                                AND h.status_to IN ('true_positive', 'false_positive')
                              ORDER BY h.id DESC LIMIT 1)
                      END AS verdict
               FROM hit JOIN flags f ON f.id = hit.flag_id
           )
           SELECT count(*) AS "flags!",
                  count(*) FILTER (WHERE verdict = 'true_positive') AS "true_positive!",
                  count(*) FILTER (WHERE verdict = 'false_positive') AS "false_positive!"
           FROM verdict"#,
        id,
        version
    )
    .fetch_one(db)
    .await?)
}

/// Flags a rule version contributed to per UTC day, over the last `days` days, as
/// (day, flags); days without any are left out.
pub async fn hits_per_day(
    db: impl PgExecutor<'_>,
    id: &str,
    version: i32,
    days: i32,
) -> Result<Vec<(OffsetDateTime, i64)>, Error> {
    let rows = sqlx::query!(
        r#"SELECT date_trunc('day', f.event_time, 'UTC') AS "day!",
                  count(DISTINCT f.id) AS "flags!"
           FROM detections d JOIN flags f ON f.id = d.flag_id
           WHERE d.rule_id = $1 AND d.rule_version = $2
             AND f.event_time >= now() - make_interval(days => $3)
           GROUP BY 1 ORDER BY 1"#,
        id,
        version,
        days
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.flags)).collect())
}
