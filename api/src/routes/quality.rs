//! A rule's measured quality, from the triage verdicts on the flags it contributed to, and
//! the promotion of a shadow rule to enforce once those verdicts show it is precise enough.
//!
//! Verdicts count for the rule's current version only: an edit starts the measurement
//! again, since the old version's precision says little about the new one.

use axum::extract::State;
use axum::Json;
use flagstream_rules::{Mode, Rule};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;

use super::rules::{current, last_version, save};
use super::{time, Document};
use crate::auth::{ClientIp, Principal};
use crate::extract::{Body, Path};
use crate::input::{self, MAX_PROSE};
use crate::state::AppState;
use crate::store::rules as store;
use crate::Error;

pub const DEFAULT_MIN_VERDICTS: i64 = 20;
pub const DEFAULT_MIN_PRECISION: f64 = 0.9;
/// How far back `hits_per_day` reaches.
const HIT_DAYS: i32 = 30;

/// What triage says of a rule's current version.
#[derive(Serialize, ToSchema)]
pub struct Quality {
    rule_id: String,
    version: u32,
    /// `enforce` or `shadow`.
    #[schema(value_type = String)]
    mode: Mode,
    /// Flags this version contributed to (a shadow rule's hits are recorded on flags the
    /// enforcing rules raised).
    flags: i64,
    /// Of those, the ones triaged as true or false positive.
    verdicts: i64,
    true_positive: i64,
    false_positive: i64,
    /// true_positive / verdicts; null without verdicts.
    precision: Option<f64>,
    /// Flags per UTC day over the last 30 days, days with none left out.
    hits_per_day: Vec<DayHits>,
}

#[derive(Serialize, ToSchema)]
pub struct DayHits {
    /// The day's start, RFC 3339.
    day: String,
    flags: i64,
}

async fn measure(db: &mut PgConnection, rule: &Rule) -> Result<Quality, Error> {
    let version = i32::try_from(rule.version).unwrap_or(i32::MAX);
    let v = store::verdicts(&mut *db, &rule.id, version).await?;
    let days = store::hits_per_day(&mut *db, &rule.id, version, HIT_DAYS).await?;
    let verdicts = v.true_positive + v.false_positive;
    Ok(Quality {
        rule_id: rule.id.clone(),
        version: rule.version,
        mode: rule.mode,
        flags: v.flags,
        verdicts,
        true_positive: v.true_positive,
        false_positive: v.false_positive,
        precision: (verdicts > 0).then(|| v.true_positive as f64 / verdicts as f64),
        hits_per_day: days
            .into_iter()
            .map(|(day, flags)| DayHits {
                day: time::format(day),
                flags,
            })
            .collect(),
    })
}

pub async fn quality(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Quality>, Error> {
    let stored = store::get(&state.pool, &id).await?.ok_or(Error::NotFound)?;
    let rule: Rule = serde_json::from_value(stored.definition)
        .map_err(|e| Error::Internal(format!("stored rule `{id}` does not parse: {e}")))?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(measure(&mut conn, &rule).await?))
}

/// The gates a promotion must pass; absent fields take the defaults.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    /// At least this many verdicts (default 20).
    min_verdicts: Option<i64>,
    /// Precision at least this, from 0 to 1 (default 0.9).
    min_precision: Option<f64>,
    /// Promote although a gate fails; needs a reason, and is audited with both.
    force: Option<bool>,
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Promoted {
    /// The rule as stored now: enforcing, as a new version.
    rule: Document,
    /// The measurement the decision was made on.
    quality: Quality,
    /// The gates that failed and were overridden; empty unless forced.
    overridden: Vec<String>,
}

/// Switches a shadow rule to enforce when its verdicts pass the gates, else 409 naming
/// what is missing.
pub async fn promote(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(gates): Body<Promote>,
) -> Result<Json<Promoted>, Error> {
    let min_verdicts = gates.min_verdicts.unwrap_or(DEFAULT_MIN_VERDICTS);
    if !(1..=1_000_000).contains(&min_verdicts) {
        return Err(Error::invalid(
            "min_verdicts",
            "`min_verdicts` is 1 to 1000000",
        ));
    }
    let min_precision = gates.min_precision.unwrap_or(DEFAULT_MIN_PRECISION);
    if !(0.0..=1.0).contains(&min_precision) {
        return Err(Error::invalid("min_precision", "`min_precision` is 0 to 1"));
    }
    let force = gates.force.unwrap_or(false);
    let reason = gates.reason.as_deref().map(str::trim).unwrap_or_default();
    input::text("reason", reason, MAX_PROSE)?;
    if force && reason.chars().count() < 3 {
        return Err(Error::invalid(
            "reason",
            "forcing a promotion needs a reason",
        ));
    }
    let mut tx = state.pool.begin().await?;
    let mut rule = current(&mut tx, &id).await?.ok_or(Error::NotFound)?;
    if rule.mode == Mode::Enforce {
        return Err(Error::Conflict(format!("rule `{id}` already enforces")));
    }
    let quality = measure(&mut tx, &rule).await?;
    let mut missing = Vec::new();
    if quality.verdicts < min_verdicts {
        missing.push(format!(
            "needs at least {min_verdicts} verdicts on version {}, has {}",
            rule.version, quality.verdicts
        ));
    }
    match quality.precision {
        Some(p) if p >= min_precision => {}
        Some(p) => missing.push(format!("precision {p:.3} is below {min_precision}")),
        None => missing.push("no precision without verdicts".into()),
    }
    if !missing.is_empty() && !force {
        return Err(Error::Conflict(format!(
            "rule `{id}` stays in shadow: {}; an admin may force it with a reason",
            missing.join("; ")
        )));
    }
    rule.mode = Mode::Enforce;
    rule.version = rule.version.max(last_version(&mut tx, &id).await?) + 1;
    let details = json!({
        "from_version": quality.version,
        "verdicts": quality.verdicts,
        "precision": quality.precision,
        "min_verdicts": min_verdicts,
        "min_precision": min_precision,
        "forced": force && !missing.is_empty(),
        "overridden": missing,
        "reason": reason,
    });
    let Json(stored) = save(tx, &principal, ip, "rule.promote", &rule, details).await?;
    Ok(Json(Promoted {
        rule: stored,
        quality,
        overridden: missing,
    }))
}
