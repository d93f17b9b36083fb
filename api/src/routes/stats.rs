//! Aggregates for dashboards: a summary and a time series, cached briefly (moka) because
//! dashboards poll them.

use std::sync::Arc;

use ::time::{Duration, OffsetDateTime};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::time;
use crate::extract::Params;
use crate::state::AppState;
use crate::Error;

const TOP: i64 = 10;
const MAX_BUCKETS: i64 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// RFC 3339; default 24 hours before `to`.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
    /// Time series only: minute, hour (default) or day.
    bucket: Option<String>,
}

impl Window {
    fn range(&self, max_days: u32) -> Result<(OffsetDateTime, OffsetDateTime), Error> {
        let to = time::parse("to", self.to.as_deref())?.unwrap_or_else(OffsetDateTime::now_utc);
        let from = time::parse("from", self.from.as_deref())?.unwrap_or(to - Duration::days(1));
        if from >= to {
            return Err(Error::invalid("from", "`from` must be before `to`"));
        }
        if to - from > Duration::days(max_days.into()) {
            return Err(Error::invalid(
                "from",
                format!("a stats range is at most {max_days} days"),
            ));
        }
        Ok((from, to))
    }

    fn key(&self, what: &str) -> String {
        format!("{what}|{:?}|{:?}|{:?}", self.from, self.to, self.bucket)
    }
}

async fn cached<F>(state: &AppState, key: String, compute: F) -> Result<Json<Value>, Error>
where
    F: std::future::Future<Output = Result<Value, Error>>,
{
    if let Some(hit) = state.stats.get(&key) {
        return Ok(Json((*hit).clone()));
    }
    let value = compute.await?;
    state.stats.insert(key, Arc::new(value.clone()));
    Ok(Json(value))
}

/// `(label, count)` rows as a JSON array of objects.
fn counts(rows: Vec<(Option<String>, i64)>, label: &str) -> Value {
    rows.into_iter()
        .map(|(k, n)| json!({ label: k, "count": n }))
        .collect()
}

pub async fn summary(
    State(state): State<AppState>,
    Params(window): Params<Window>,
) -> Result<Json<Value>, Error> {
    let (from, to) = window.range(state.stats_max_range_days)?;
    let db = state.clone();
    cached(&state, window.key("summary"), async move {
        let mut tx = db.heavy_read().await?;
        let grouped = |column: &str| {
            format!(
                "SELECT {column}::text, count(*) FROM flags f
                 WHERE f.event_time >= $1 AND f.event_time < $2
                 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP}"
            )
        };
        let mut out = json!({
            "from": time::format(from),
            "to": time::format(to),
        });
        for (name, column, label) in [
            ("by_severity", "f.severity", "severity"),
            ("by_status", "f.status", "status"),
            ("top_models", "f.model", "model"),
            ("top_providers", "f.provider", "provider"),
            ("top_src_ips", "host(f.src_ip)", "src_ip"),
        ] {
            let rows: Vec<(Option<String>, i64)> = sqlx::query_as(&grouped(column))
                .bind(from)
                .bind(to)
                .fetch_all(&mut *tx)
                .await?;
            out[name] = counts(rows, label);
        }
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT c, count(*) FROM flags f, unnest(f.categories) AS c
             WHERE f.event_time >= $1 AND f.event_time < $2 GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?;
        out["by_category"] = counts(rows, "category");
        // Per rule: flags it matched, and how triage judged them.
        let rules: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT d.rule_id, count(DISTINCT f.id),
                    count(DISTINCT f.id) FILTER (WHERE f.status = 'true_positive'),
                    count(DISTINCT f.id) FILTER (WHERE f.status = 'false_positive')
             FROM detections d JOIN flags f ON f.id = d.flag_id
             WHERE f.event_time >= $1 AND f.event_time < $2
             GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?;
        out["top_rules"] = rules
            .iter()
            .take(TOP as usize)
            .map(|(id, n, _, _)| json!({ "rule_id": id, "count": n }))
            .collect();
        out["false_positive_rate"] = rules
            .iter()
            .filter(|(_, _, tp, fp)| tp + fp > 0)
            .map(|(id, _, tp, fp)| {
                json!({ "rule_id": id, "true_positive": tp, "false_positive": fp,
                        "rate": *fp as f64 / (tp + fp) as f64 })
            })
            .collect();
        let (events, flagged): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT sum(events)::bigint, sum(flagged)::bigint FROM traffic_rollups
             WHERE minute >= $1 AND minute < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&mut *tx)
        .await?;
        let (events, flagged) = (events.unwrap_or(0), flagged.unwrap_or(0));
        out["events"] = events.into();
        out["flagged"] = flagged.into();
        out["flagged_rate"] = if events > 0 {
            (flagged as f64 / events as f64).into()
        } else {
            Value::Null
        };
        Ok(out)
    })
    .await
}

pub async fn timeseries(
    State(state): State<AppState>,
    Params(window): Params<Window>,
) -> Result<Json<Value>, Error> {
    let (from, to) = window.range(state.stats_max_range_days)?;
    let bucket = window.bucket.clone().unwrap_or_else(|| "hour".into());
    let seconds = match bucket.as_str() {
        "minute" => 60,
        "hour" => 3_600,
        "day" => 86_400,
        other => {
            return Err(Error::invalid(
                "bucket",
                format!("bucket must be minute, hour or day, got `{other}`"),
            ))
        }
    };
    if (to - from).whole_seconds() / seconds > MAX_BUCKETS {
        return Err(Error::invalid(
            "bucket",
            format!("more than {MAX_BUCKETS} buckets; choose a wider bucket or a shorter range"),
        ));
    }
    let db = state.clone();
    cached(&state, window.key("timeseries"), async move {
        let mut tx = db.heavy_read().await?;
        let traffic: Vec<(OffsetDateTime, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT date_trunc($3, minute), sum(events)::bigint, sum(flagged)::bigint,
                    sum(tokens_in)::bigint, sum(tokens_out)::bigint, sum(cost_micros)::bigint
             FROM traffic_rollups WHERE minute >= $1 AND minute < $2 GROUP BY 1 ORDER BY 1",
        )
        .bind(from)
        .bind(to)
        .bind(&bucket)
        .fetch_all(&mut *tx)
        .await?;
        let severities: Vec<(OffsetDateTime, String, i64)> = sqlx::query_as(
            "SELECT date_trunc($3, event_time), severity, count(*) FROM flags
             WHERE event_time >= $1 AND event_time < $2 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(from)
        .bind(to)
        .bind(&bucket)
        .fetch_all(&mut *tx)
        .await?;
        let mut buckets = std::collections::BTreeMap::<OffsetDateTime, Value>::new();
        let empty = || {
            json!({ "events": 0, "flagged": 0, "tokens_in": 0, "tokens_out": 0,
                    "cost_usd": 0.0, "flags_by_severity": {} })
        };
        for (at, events, flagged, tin, tout, cost) in traffic {
            let b = buckets.entry(at).or_insert_with(empty);
            b["events"] = events.into();
            b["flagged"] = flagged.into();
            b["tokens_in"] = tin.into();
            b["tokens_out"] = tout.into();
            b["cost_usd"] = (cost as f64 / 1e6).into();
        }
        for (at, severity, n) in severities {
            buckets.entry(at).or_insert_with(empty)["flags_by_severity"][severity] = n.into();
        }
        let series: Vec<Value> = buckets
            .into_iter()
            .map(|(at, mut b)| {
                b["time"] = time::format(at).into();
                b
            })
            .collect();
        Ok(json!({ "bucket": bucket, "series": series }))
    })
    .await
}
