//! Stored flags as alerting sees them: rows of the `alert_flags` view.

use flagstream_rules::alert::AlertFlag;
use sqlx::PgConnection;

use crate::Error;

/// The flags with these ids that still exist, in id order, with their detections. A row
/// that does not parse (the consumer wrote it, so only a schema drift could cause it) is
/// logged and left out rather than holding back every other flag's alert.
pub async fn load(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<AlertFlag>, Error> {
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", flag AS "flag!" FROM alert_flags WHERE id = ANY($1) ORDER BY id"#,
        ids
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match serde_json::from_value(row.flag) {
            Ok(flag) => Some(flag),
            Err(e) => {
                tracing::error!(flag_id = row.id, error = %e, "a stored flag does not parse; not alerted");
                None
            }
        })
        .collect())
}
