//! The audit trail: logins, reveals, exports, rule, user and key changes.

use std::net::IpAddr;

use serde_json::Value;
use sqlx::PgExecutor;

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
    let id = sqlx::query_scalar(
        "INSERT INTO audit_log (actor, action, target, success, ip, details)
         VALUES ($1, $2, $3, false, $4::inet, $5 || '{\"outcome\": \"started\"}') RETURNING id",
    )
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.ip.map(|ip| ip.to_string()))
    .bind(entry.details)
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
    sqlx::query("UPDATE audit_log SET success = $2, details = details || $3 WHERE id = $1")
        .bind(id)
        .bind(success)
        .bind(details)
        .execute(db)
        .await?;
    Ok(())
}

/// Writes one audit row. Called inside the transaction of the change it records when there
/// is one, so a change never lands without its audit row.
pub async fn record(db: impl PgExecutor<'_>, entry: Entry<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO audit_log (actor, action, target, success, ip, details)
         VALUES ($1, $2, $3, $4, $5::inet, $6)",
    )
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.success)
    .bind(entry.ip.map(|ip| ip.to_string()))
    .bind(entry.details)
    .execute(db)
    .await?;
    Ok(())
}
