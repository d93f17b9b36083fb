//! Stored flags as alerting sees them.

use std::collections::HashMap;
use std::net::IpAddr;

use flagstream_rules::alert::{AlertDetection, AlertFlag};
use flagstream_rules::Severity;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::Error;

type FlagRow = (
    i64,
    OffsetDateTime,
    i16,
    String,
    Vec<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// The flags with these ids that still exist, in id order, with their detections.
pub async fn load(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<AlertFlag>, Error> {
    let rows: Vec<FlagRow> = sqlx::query_as(
        "SELECT id, event_time, score, severity, categories, model, provider, host(src_ip),
                user_id, app
         FROM flags WHERE id = ANY($1) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let detections: Vec<(i64, String, i32, String, String, bool)> = sqlx::query_as(
        "SELECT flag_id, rule_id, rule_version, field, excerpt, shadow
         FROM detections WHERE flag_id = ANY($1) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_flag: HashMap<i64, Vec<AlertDetection>> = HashMap::new();
    for (flag_id, rule_id, rule_version, field, excerpt, shadow) in detections {
        by_flag.entry(flag_id).or_default().push(AlertDetection {
            rule_id,
            rule_version,
            field,
            excerpt,
            shadow,
        });
    }
    let mut flags = Vec::with_capacity(rows.len());
    for (id, event_time, score, severity, categories, model, provider, ip, user, app) in rows {
        flags.push(AlertFlag {
            id,
            event_time,
            score: u8::try_from(score).unwrap_or(100),
            severity: serde_json::from_value(serde_json::Value::String(severity))
                .unwrap_or(Severity::Low),
            categories,
            model,
            provider,
            src_ip: ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            user,
            app,
            detections: by_flag.remove(&id).unwrap_or_default(),
        });
    }
    Ok(flags)
}
