//! Backtests: "what would this rule have caught last week?" The API validates the draft
//! and queues the job; a consumer's backtest worker replays the topic (the API never talks
//! to Kafka) and writes the progress and result that these handlers read.

use axum::extract::State;
use axum::Json;
use flagstream_rules::backtest::{Draft, MAX_DRAFT_RULES};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{rules, time as times, Document};
use crate::auth::{ClientIp, Principal};
use crate::extract::{Body, Params, Path};
use crate::input;
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::backtests as store;
use crate::Error;

/// Jobs queued or running at once, all users together.
const MAX_PENDING: i64 = 20;
const MAX_LAST_EVENTS: i64 = 100_000_000;
const DEFAULT_LIST: i64 = 50;

/// A backtest to run: draft rules and the traffic to try them on, either a time range of
/// the topic (Kafka timestamps) or its newest events.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBacktest {
    /// Draft rule definitions: new rules, or new definitions of active rules (same id).
    /// Tried enabled and enforcing whatever their `enabled` and `mode` say.
    #[schema(value_type = Vec<Object>)]
    rules: Vec<Value>,
    /// Ids of active rules the draft retires.
    #[serde(default)]
    replaces: Vec<String>,
    /// Start of the range, RFC 3339 (inclusive).
    from: Option<String>,
    /// End of the range, RFC 3339 (exclusive); default now.
    to: Option<String>,
    /// Instead of a range: the newest N events of the topic.
    last_events: Option<i64>,
}

/// A backtest job: its progress while it runs, its result when it is done.
#[derive(Serialize, ToSchema)]
pub struct Backtest {
    id: i64,
    /// `queued`, `running`, `done`, `cancelled` or `failed`.
    status: String,
    created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    finished_at: Option<OffsetDateTime>,
    /// The draft rules and the rules they retire.
    draft: Document,
    range: BacktestRange,
    progress: Progress,
    cancel_requested: bool,
    /// Workers that took the job (more than one: a worker died and another resumed it).
    attempts: i32,
    /// Why it stopped early or failed.
    note: Option<String>,
    /// When the result is deleted.
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    /// When done or cancelled: events scanned, matching events, what the draft would flag,
    /// new and lost flags against the active set, breakdowns per rule, field and model, the
    /// top redacted excerpts, samples, the draft's cost and the range the topic still held.
    /// Omitted from the list.
    #[schema(value_type = Option<Object>)]
    result: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct BacktestRange {
    #[serde(with = "time::serde::rfc3339::option")]
    from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    to: Option<OffsetDateTime>,
    last_events: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Progress {
    /// Messages of the range read so far (as of the last checkpoint).
    scanned: i64,
    /// Messages in the range, once the worker has found its offsets.
    estimated_total: Option<i64>,
    events_per_second: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct Backtests {
    backtests: Vec<Backtest>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1 to 200, default 50.
    limit: Option<i64>,
}

/// What a DELETE did: `cancelled` (at once), `cancelling` (the worker stops at its next
/// checkpoint) or `deleted` (a finished job and its result).
#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    id: i64,
    outcome: &'static str,
}

impl From<store::Row> for Backtest {
    fn from(r: store::Row) -> Backtest {
        let events_per_second = match r.seconds {
            Some(s) if s > 0.0 => Some(r.scanned as f64 / s),
            _ => None,
        };
        Backtest {
            id: r.id,
            status: r.status,
            created_by: r.created_by,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            draft: Document(r.draft),
            range: BacktestRange {
                from: r.range_from,
                to: r.range_to,
                last_events: r.last_events,
            },
            progress: Progress {
                scanned: r.scanned,
                estimated_total: r.estimated_total,
                events_per_second,
            },
            cancel_requested: r.cancel_requested,
            attempts: r.attempts,
            note: r.note,
            expires_at: r.expires_at,
            result: r.result,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Body(new): Body<NewBacktest>,
) -> Result<Json<Backtest>, Error> {
    if new.rules.is_empty() || new.rules.len() > MAX_DRAFT_RULES {
        return Err(Error::invalid(
            "rules",
            format!("give 1 to {MAX_DRAFT_RULES} draft rules"),
        ));
    }
    if new.replaces.len() > MAX_DRAFT_RULES {
        return Err(Error::invalid(
            "replaces",
            format!("at most {MAX_DRAFT_RULES} rules can be retired"),
        ));
    }
    for id in &new.replaces {
        input::text("replaces", id, 128)?;
    }
    let draft = Draft {
        rules: new
            .rules
            .into_iter()
            .map(rules::validate)
            .collect::<Result<_, _>>()?,
        replaces: new.replaces,
    };
    let (range_from, range_to, last_events) = range(new.from, new.to, new.last_events)?;
    // The draft compiles on its own; the worker compiles it again with the active rules.
    state.cpu.compile(draft.rules.clone()).await?;
    let draft = serde_json::to_value(&draft).map_err(|e| Error::Internal(e.to_string()))?;

    let mut tx = state.pool.begin().await?;
    // Serialized with other rule work, so two requests cannot both take the last slot.
    crate::store::rules::lock_set(&mut *tx).await?;
    if store::pending(&mut *tx).await? >= MAX_PENDING {
        return Err(Error::Conflict(format!(
            "{MAX_PENDING} backtests are queued or running; wait for one or cancel one"
        )));
    }
    let id = store::insert(
        &mut *tx,
        store::New {
            created_by: &principal.name,
            draft: &draft,
            range_from,
            range_to,
            last_events,
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        Entry {
            actor: &principal.name,
            action: "rule.backtest",
            target: Some(&id.to_string()),
            success: true,
            ip,
            details: json!({
                "rules": draft["rules"].as_array().map(|r| r.iter().map(|r| r["id"].clone()).collect::<Vec<_>>()),
                "replaces": draft["replaces"],
                "from": range_from.map(times::format),
                "to": range_to.map(times::format),
                "last_events": last_events,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    let row = store::get(&state.pool, id).await?.ok_or(Error::NotFound)?;
    Ok(Json(row.into()))
}

type Range = (Option<OffsetDateTime>, Option<OffsetDateTime>, Option<i64>);

/// Exactly one of a time range (`from`, optional `to`) or `last_events`.
fn range(from: Option<String>, to: Option<String>, last: Option<i64>) -> Result<Range, Error> {
    let from = times::parse("from", from.as_deref())?;
    let to = times::parse("to", to.as_deref())?;
    match (from, to, last) {
        (None, None, Some(n)) if (1..=MAX_LAST_EVENTS).contains(&n) => Ok((None, None, Some(n))),
        (None, None, Some(_)) => Err(Error::invalid(
            "last_events",
            format!("`last_events` is 1 to {MAX_LAST_EVENTS}"),
        )),
        (Some(from), to, None) => {
            let to = to.unwrap_or_else(OffsetDateTime::now_utc);
            if from >= to {
                return Err(Error::invalid("to", "`to` must be after `from`"));
            }
            Ok((Some(from), Some(to), None))
        }
        (None, Some(_), None) => Err(Error::invalid("from", "`to` needs a `from`")),
        _ => Err(Error::invalid(
            "from",
            "give either `from` (and optionally `to`) or `last_events`",
        )),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> Result<Json<Backtests>, Error> {
    let limit = q.limit.unwrap_or(DEFAULT_LIST);
    if !(1..=200).contains(&limit) {
        return Err(Error::invalid("limit", "limit must be between 1 and 200"));
    }
    let backtests = store::list(&state.pool, limit)
        .await?
        .into_iter()
        .map(Backtest::from)
        .collect();
    Ok(Json(Backtests { backtests }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Backtest>, Error> {
    let row = store::get(&state.pool, id).await?.ok_or(Error::NotFound)?;
    Ok(Json(row.into()))
}

/// Cancels a queued or running job; deletes a finished one with its result.
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
) -> Result<Json<Cancelled>, Error> {
    let mut tx = state.pool.begin().await?;
    let outcome = match store::cancel(&mut *tx, id).await? {
        Some(status) if status == "cancelled" => "cancelled",
        Some(_) => "cancelling",
        None if store::delete_finished(&mut *tx, id).await? => "deleted",
        None => return Err(Error::NotFound),
    };
    audit::record(
        &mut *tx,
        Entry {
            actor: &principal.name,
            action: "rule.backtest_cancel",
            target: Some(&id.to_string()),
            success: true,
            ip,
            details: json!({ "outcome": outcome }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Cancelled { id, outcome }))
}
