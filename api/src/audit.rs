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
