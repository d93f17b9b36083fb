//! Triage of stored flags: status and assignee changes with their history, sealed content
//! for reveal, and a flag as alerting sees it. The flag search, with its dynamic filter, is
//! in `routes/flags.rs`.

use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use crate::Error;

/// One triage change, as the history endpoint shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Change {
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
    pub actor: String,
    pub status_from: String,
    pub status_to: String,
    pub assignee: Option<String>,
    pub note: Option<String>,
}

/// A flag's stored content: how it was stored and the bytes, if any were.
pub struct Sealed {
    pub event_id: String,
    pub content_mode: String,
    pub content: Option<Vec<u8>>,
}

/// A recorded transition; `assignee` is the flag's assignee after it.
pub struct Transition<'a> {
    pub flag_id: i64,
    pub actor: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub assignee: Option<&'a str>,
    pub note: Option<&'a str>,
}

/// Status and assignee, locked until the transaction ends.
pub async fn lock_triage(
    db: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<(String, Option<String>)>, Error> {
    let row = sqlx::query!(
        "SELECT status, assignee FROM flags WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.status, r.assignee)))
}

/// (id, status) of those of `ids` that exist, locked in id order.
pub async fn lock_statuses(
    db: impl PgExecutor<'_>,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, Error> {
    let rows = sqlx::query!(
        "SELECT id, status FROM flags WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.status)).collect())
}

pub async fn set_triage(
    db: impl PgExecutor<'_>,
    id: i64,
    status: &str,
    assignee: Option<&str>,
) -> Result<(), Error> {
    sqlx::query!(
        "UPDATE flags SET status = $2, assignee = $3 WHERE id = $1",
        id,
        status,
        assignee
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_statuses(db: impl PgExecutor<'_>, ids: &[i64], status: &str) -> Result<(), Error> {
    sqlx::query!(
        "UPDATE flags SET status = $2 WHERE id = ANY($1)",
        ids,
        status
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn record_transition(db: impl PgExecutor<'_>, t: Transition<'_>) -> Result<(), Error> {
    sqlx::query!(
        "INSERT INTO flag_history (flag_id, actor, status_from, status_to, assignee, note)
         VALUES ($1, $2, $3, $4, $5, $6)",
        t.flag_id,
        t.actor,
        t.from,
        t.to,
        t.assignee,
        t.note
    )
    .execute(db)
    .await?;
    Ok(())
}

/// One history row per flag of a bulk change: `ids[i]` went from `from[i]` to `to`.
pub async fn record_bulk_transition(
    db: impl PgExecutor<'_>,
    ids: &[i64],
    from: &[String],
    actor: &str,
    to: &str,
    note: Option<&str>,
) -> Result<(), Error> {
    sqlx::query!(
        "INSERT INTO flag_history (flag_id, actor, status_from, status_to, note)
         SELECT id, $3, status_from, $4, $5
         FROM UNNEST($1::bigint[], $2::text[]) AS u(id, status_from)",
        ids,
        from,
        actor,
        to,
        note
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn exists(pool: &PgPool, id: i64) -> Result<bool, Error> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM flags WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(pool)
    .await?)
}

pub async fn history(pool: &PgPool, id: i64) -> Result<Vec<Change>, Error> {
    Ok(sqlx::query_as!(
        Change,
        "SELECT changed_at, actor, status_from, status_to, assignee, note
         FROM flag_history WHERE flag_id = $1 ORDER BY id",
        id
    )
    .fetch_all(pool)
    .await?)
}

pub async fn sealed(pool: &PgPool, id: i64) -> Result<Option<Sealed>, Error> {
    Ok(sqlx::query_as!(
        Sealed,
        "SELECT event_id, content_mode, content FROM flags WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?)
}

pub async fn alert_flag(pool: &PgPool, id: i64) -> Result<Option<Value>, Error> {
    Ok(sqlx::query_scalar!(
        r#"SELECT flag AS "flag!" FROM alert_flags WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?)
}

pub async fn newest_alert_flag(pool: &PgPool) -> Result<Option<Value>, Error> {
    Ok(sqlx::query_scalar!(
        r#"SELECT flag AS "flag!" FROM alert_flags ORDER BY event_time DESC, id DESC LIMIT 1"#
    )
    .fetch_optional(pool)
    .await?)
}
