//! Aggregates over flags, detections and traffic rollups for a time range `[from, to)`.
//! Run inside the API's heavy-read transaction, which bounds their time.

use sqlx::PgExecutor;
use time::OffsetDateTime;

use crate::Error;

/// A flag attribute the summary counts by.
#[derive(Debug, Clone, Copy)]
pub enum Dimension {
    Severity,
    Status,
    Model,
    Provider,
    SrcIp,
}

impl Dimension {
    fn column(self) -> &'static str {
        match self {
            Dimension::Severity => "severity",
            Dimension::Status => "status",
            Dimension::Model => "model",
            Dimension::Provider => "provider",
            Dimension::SrcIp => "src_ip",
        }
    }
}

pub struct RuleCounts {
    pub rule_id: String,
    pub flags: i64,
    pub true_positive: i64,
    pub false_positive: i64,
}

pub struct Traffic {
    pub bucket: OffsetDateTime,
    pub events: i64,
    pub flagged: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_micros: i64,
}

/// The `limit` most frequent values of `dimension` among flags in the range, with counts.
pub async fn top(
    db: impl PgExecutor<'_>,
    dimension: Dimension,
    from: OffsetDateTime,
    to: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(Option<String>, i64)>, Error> {
    let rows = sqlx::query!(
        r#"SELECT CASE $3::text WHEN 'severity' THEN f.severity
                                WHEN 'status' THEN f.status
                                WHEN 'model' THEN f.model
                                WHEN 'provider' THEN f.provider
                                ELSE host(f.src_ip) END AS value,
                  count(*) AS "count!"
           FROM flags f
           WHERE f.event_time >= $1 AND f.event_time < $2 AND NOT f.shadow_only
           GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $4"#,
        from,
        to,
        dimension.column(),
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.value, r.count)).collect())
}

/// Flags per category in the range, most frequent first.
pub async fn categories(
    db: impl PgExecutor<'_>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<(Option<String>, i64)>, Error> {
    let rows = sqlx::query!(
        r#"SELECT c AS category, count(*) AS "count!" FROM flags f, unnest(f.categories) AS c
           WHERE f.event_time >= $1 AND f.event_time < $2 GROUP BY 1 ORDER BY 2 DESC, 1"#,
        from,
        to
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.category, r.count)).collect())
}

/// Per rule: the flags it contributed to in the range (a shadow rule's shadow-only rows
/// included: their verdicts are its precision) and their triage verdicts, most frequent first.
pub async fn rules(
    db: impl PgExecutor<'_>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<RuleCounts>, Error> {
    Ok(sqlx::query_as!(
        RuleCounts,
        r#"SELECT d.rule_id,
                  count(DISTINCT f.id) AS "flags!",
                  count(DISTINCT f.id) FILTER (WHERE f.status = 'true_positive')
                      AS "true_positive!",
                  count(DISTINCT f.id) FILTER (WHERE f.status = 'false_positive')
                      AS "false_positive!"
           FROM detections d JOIN flags f ON f.id = d.flag_id
           WHERE f.event_time >= $1 AND f.event_time < $2
           GROUP BY 1 ORDER BY 2 DESC, 1"#,
        from,
        to
    )
    .fetch_all(db)
    .await?)
}

/// Events seen and events flagged in the range.
pub async fn totals(
    db: impl PgExecutor<'_>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<(i64, i64), Error> {
    let row = sqlx::query!(
        r#"SELECT COALESCE(sum(events), 0)::bigint AS "events!",
                  COALESCE(sum(flagged), 0)::bigint AS "flagged!"
           FROM traffic_rollups WHERE minute >= $1 AND minute < $2"#,
        from,
        to
    )
    .fetch_one(db)
    .await?;
    Ok((row.events, row.flagged))
}

/// Traffic per `bucket` (minute, hour or day) in the range.
pub async fn traffic(
    db: impl PgExecutor<'_>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: &str,
) -> Result<Vec<Traffic>, Error> {
    Ok(sqlx::query_as!(
        Traffic,
        r#"SELECT date_trunc($3, minute) AS "bucket!",
                  sum(events)::bigint AS "events!", sum(flagged)::bigint AS "flagged!",
                  sum(tokens_in)::bigint AS "tokens_in!", sum(tokens_out)::bigint AS "tokens_out!",
                  sum(cost_micros)::bigint AS "cost_micros!"
           FROM traffic_rollups WHERE minute >= $1 AND minute < $2 GROUP BY 1 ORDER BY 1"#,
        from,
        to,
        bucket
    )
    .fetch_all(db)
    .await?)
}

/// Flags per `bucket` and severity in the range, as (bucket, severity, count).
pub async fn severities(
    db: impl PgExecutor<'_>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: &str,
) -> Result<Vec<(OffsetDateTime, String, i64)>, Error> {
    let rows = sqlx::query!(
        r#"SELECT date_trunc($3, event_time) AS "bucket!", severity, count(*) AS "count!"
           FROM flags WHERE event_time >= $1 AND event_time < $2 AND NOT shadow_only
           GROUP BY 1, 2 ORDER BY 1, 2"#,
        from,
        to,
        bucket
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.bucket, r.severity, r.count))
        .collect())
}
