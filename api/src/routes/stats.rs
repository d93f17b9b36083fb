//! Aggregates for dashboards: a summary and a time series, cached briefly (moka) because
//! dashboards poll them.

use std::collections::BTreeMap;
use std::sync::Arc;

use ::time::{Duration, OffsetDateTime};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::time;
use crate::extract::Params;
use crate::state::AppState;
use crate::store::stats::{self as store, Dimension};
use crate::Error;

const TOP: i64 = 10;
const MAX_BUCKETS: i64 = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

async fn cached<T, F>(state: &AppState, key: String, compute: F) -> Result<Json<Value>, Error>
where
    T: Serialize,
    F: std::future::Future<Output = Result<T, Error>>,
{
    if let Some(hit) = state.stats.get(&key) {
        return Ok(Json((*hit).clone()));
    }
    let value = serde_json::to_value(compute.await?).map_err(|e| Error::Internal(e.to_string()))?;
    state.stats.insert(key, Arc::new(value.clone()));
    Ok(Json(value))
}

/// Count rows, each labelled by the value counted.
macro_rules! counts {
    ($($name:ident($label:ident)),* $(,)?) => {$(
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            $label: Option<String>,
            count: i64,
        }

        impl From<(Option<String>, i64)> for $name {
            fn from(($label, count): (Option<String>, i64)) -> Self {
                $name { $label, count }
            }
        }
    )*};
}

counts! {
    SeverityCount(severity),
    StatusCount(status),
    ModelCount(model),
    ProviderCount(provider),
    SourceCount(src_ip),
    CategoryCount(category),
    RuleCount(rule_id),
}

/// Counts over flags whose event time is in `[from, to)`; top lists hold at most 10.
#[derive(Serialize, ToSchema)]
pub struct Summary {
    from: String,
    to: String,
    by_severity: Vec<SeverityCount>,
    by_status: Vec<StatusCount>,
    top_models: Vec<ModelCount>,
    top_providers: Vec<ProviderCount>,
    top_src_ips: Vec<SourceCount>,
    by_category: Vec<CategoryCount>,
    top_rules: Vec<RuleCount>,
    /// Per rule with triaged flags: how triage judged them.
    false_positive_rate: Vec<RuleVerdicts>,
    events: i64,
    flagged: i64,
    /// Null without traffic.
    flagged_rate: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct RuleVerdicts {
    rule_id: String,
    true_positive: i64,
    false_positive: i64,
    /// false_positive / (true_positive + false_positive).
    rate: f64,
    /// true_positive / (true_positive + false_positive).
    precision: f64,
}

async fn top<T: From<(Option<String>, i64)>>(
    tx: &mut sqlx::PgConnection,
    dimension: Dimension,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<T>, Error> {
    let rows = store::top(tx, dimension, from, to, TOP).await?;
    Ok(rows.into_iter().map(T::from).collect())
}

pub async fn summary(
    State(state): State<AppState>,
    Params(window): Params<Window>,
) -> Result<Json<Value>, Error> {
    let (from, to) = window.range(state.stats_max_range_days)?;
    let db = state.clone();
    cached(&state, window.key("summary"), async move {
        let mut tx = db.heavy_read().await?;
        let by_severity = top(&mut tx, Dimension::Severity, from, to).await?;
        let by_status = top(&mut tx, Dimension::Status, from, to).await?;
        let top_models = top(&mut tx, Dimension::Model, from, to).await?;
        let top_providers = top(&mut tx, Dimension::Provider, from, to).await?;
        let top_src_ips = top(&mut tx, Dimension::SrcIp, from, to).await?;
        let by_category = store::categories(&mut *tx, from, to).await?;
        // Per rule: flags it matched, and how triage judged them.
        let rules = store::rules(&mut *tx, from, to).await?;
        let (events, flagged) = store::totals(&mut *tx, from, to).await?;
        Ok(Summary {
            from: time::format(from),
            to: time::format(to),
            by_severity,
            by_status,
            top_models,
            top_providers,
            top_src_ips,
            by_category: by_category.into_iter().map(CategoryCount::from).collect(),
            top_rules: rules
                .iter()
                .take(TOP as usize)
                .map(|r| RuleCount::from((Some(r.rule_id.clone()), r.flags)))
                .collect(),
            false_positive_rate: rules
                .iter()
                .filter(|r| r.true_positive + r.false_positive > 0)
                .map(|r| {
                    let (tp, fp) = (r.true_positive, r.false_positive);
                    RuleVerdicts {
                        rule_id: r.rule_id.clone(),
                        true_positive: tp,
                        false_positive: fp,
                        rate: fp as f64 / (tp + fp) as f64,
                        precision: tp as f64 / (tp + fp) as f64,
                    }
                })
                .collect(),
            events,
            flagged,
            flagged_rate: (events > 0).then(|| flagged as f64 / events as f64),
        })
    })
    .await
}

/// Traffic and flags per time bucket; buckets without either are left out.
#[derive(Serialize, ToSchema)]
pub struct Timeseries {
    /// minute, hour or day.
    bucket: String,
    series: Vec<Bucket>,
}

#[derive(Serialize, ToSchema, Default)]
pub struct Bucket {
    time: String,
    events: i64,
    flagged: i64,
    tokens_in: i64,
    tokens_out: i64,
    cost_usd: f64,
    /// Flags per severity (low, medium, high, critical) in the bucket.
    flags_by_severity: BTreeMap<String, i64>,
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
        let mut buckets = BTreeMap::<OffsetDateTime, Bucket>::new();
        for t in traffic {
            let b = buckets.entry(t.bucket).or_default();
            b.events = t.events;
            b.flagged = t.flagged;
            b.tokens_in = t.tokens_in;
            b.tokens_out = t.tokens_out;
            b.cost_usd = t.cost_micros as f64 / 1e6;
        }
        for (at, severity, n) in severities {
            buckets
                .entry(at)
                .or_default()
                .flags_by_severity
                .insert(severity, n);
        }
        let series = buckets
            .into_iter()
            .map(|(at, b)| Bucket {
                time: time::format(at),
                ..b
            })
            .collect();
        Ok(Timeseries { bucket, series })
    })
    .await
}
