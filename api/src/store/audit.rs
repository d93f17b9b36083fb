//! The audit trail: logins, reveals, exports, rule, user and key changes.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use crate::Error;

pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub success: bool,
    pub ip: Option<IpAddr>,
    pub details: Value,
}

/// Writes the row of an action whose outcome is known only later (an export streams after
/// its response has started): recorded as not (yet) successful, then [`finish`]ed. A crash
/// in between leaves an honest "did not finish" row.
pub async fn start(db: impl PgExecutor<'_>, entry: Entry<'_>) -> Result<i64, Error> {
    // The address goes in as text: sqlx maps `inet` to a type this crate does not enable.
    let id = sqlx::query_scalar!(
        r#"INSERT INTO audit_log (actor, action, target, success, ip, details)
           VALUES ($1, $2, $3, false, $4::text::inet, $5::jsonb || '{"outcome": "started"}'::jsonb)
           RETURNING id"#,
        entry.actor,
        entry.action,
        entry.target,
        entry.ip.map(|ip| ip.to_string()),
        entry.details
    )
    .fetch_one(db)
    .await?;
    Ok(id)
}

/// Records the outcome of a [`start`]ed action, merging `details` into the row's.
pub async fn finish(
    db: impl PgExecutor<'_>,
    id: i64,
    success: bool,
    details: Value,
) -> Result<(), Error> {
    sqlx::query!(
        "UPDATE audit_log SET success = $2, details = details || $3 WHERE id = $1",
        id,
        success,
        details
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Writes one audit row. Called inside the transaction of the change it records when there
/// is one, so a change never lands without its audit row.
pub async fn record(db: impl PgExecutor<'_>, entry: Entry<'_>) -> Result<(), Error> {
    sqlx::query!(
        "INSERT INTO audit_log (actor, action, target, success, ip, details)
         VALUES ($1, $2, $3, $4, $5::text::inet, $6)",
        entry.actor,
        entry.action,
        entry.target,
        entry.success,
        entry.ip.map(|ip| ip.to_string()),
        entry.details
    )
    .execute(db)
    .await?;
    Ok(())
}

/// One audit row as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Row {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub success: bool,
    pub ip: Option<String>,
    pub details: Value,
}

/// At most `limit` rows older than `before`, of this action and actor when given, newest
/// first by id.
pub async fn list(
    pool: &PgPool,
    action: Option<&str>,
    actor: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Row>, Error> {
    Ok(sqlx::query_as!(
        Row,
        "SELECT id, at, actor, action, target, success, host(ip) AS ip, details FROM audit_log
         WHERE ($1::text IS NULL OR action = $1)
           AND ($2::text IS NULL OR actor = $2)
           AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
        action,
        actor,
        before,
        limit
    )
    .fetch_all(pool)
    .await?)
}
