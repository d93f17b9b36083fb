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
use crate::store::stats::{self as store, Dimension};
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
        let mut out = json!({
            "from": time::format(from),
            "to": time::format(to),
        });
        for (name, dimension, label) in [
            ("by_severity", Dimension::Severity, "severity"),
            ("by_status", Dimension::Status, "status"),
            ("top_models", Dimension::Model, "model"),
            ("top_providers", Dimension::Provider, "provider"),
            ("top_src_ips", Dimension::SrcIp, "src_ip"),
        ] {
            let rows = store::top(&mut *tx, dimension, from, to, TOP).await?;
            out[name] = counts(rows, label);
        }
        out["by_category"] = counts(store::categories(&mut *tx, from, to).await?, "category");
        // Per rule: flags it matched, and how triage judged them.
        let rules = store::rules(&mut *tx, from, to).await?;
        out["top_rules"] = rules
            .iter()
            .take(TOP as usize)
            .map(|r| json!({ "rule_id": r.rule_id, "count": r.flags }))
            .collect();
        out["false_positive_rate"] = rules
            .iter()
            .filter(|r| r.true_positive + r.false_positive > 0)
            .map(|r| {
                let (tp, fp) = (r.true_positive, r.false_positive);
                json!({ "rule_id": r.rule_id, "true_positive": tp, "false_positive": fp,
                        "rate": fp as f64 / (tp + fp) as f64 })
            })
            .collect();
        let (events, flagged) = store::totals(&mut *tx, from, to).await?;
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
        let traffic = store::traffic(&mut *tx, from, to, &bucket).await?;
        let severities = store::severities(&mut *tx, from, to, &bucket).await?;
        let mut buckets = std::collections::BTreeMap::<OffsetDateTime, Value>::new();
        let empty = || {
            json!({ "events": 0, "flagged": 0, "tokens_in": 0, "tokens_out": 0,
                    "cost_usd": 0.0, "flags_by_severity": {} })
        };
        for t in traffic {
            let b = buckets.entry(t.bucket).or_insert_with(empty);
            b["events"] = t.events.into();
            b["flagged"] = t.flagged.into();
            b["tokens_in"] = t.tokens_in.into();
            b["tokens_out"] = t.tokens_out.into();
            b["cost_usd"] = (t.cost_micros as f64 / 1e6).into();
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
