//! Rule management. Every change is validated by compiling the rule with the engine the
//! consumer runs, versioned (the `rules` table's trigger appends to `rule_versions` and
//! sends `NOTIFY rules_changed`), and audited in the same transaction.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::Json;
use flagstream_rules::{Event, Mode, Pack, Rule, RuleKind, RuleSet};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};
use utoipa::ToSchema;

use super::{Deleted, Document};

use crate::auth::{ClientIp, Principal};
use crate::extract::{Body, Params, Path};
use crate::input::{self, MAX_PROSE};
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::rules as store;
use crate::Error;

const MAX_TEST_EVENTS: usize = 100;

/// What one rule and the whole set may hold: far above any real pack, low enough that a
/// compile stays well under a second, so a request cannot occupy the API.
const MAX_KEYWORDS_PER_RULE: usize = 10_000;
const MAX_KEYWORDS_PER_SET: i64 = 50_000;
const MAX_RULES: i64 = 1_000;
const MAX_EXCEPTIONS: usize = 1_000;
const MAX_NAME: usize = 200;
const RESERVED_IDS: [&str; 3] = ["backtests", "templates", "test"];

/// Parses a rule definition and checks its bounds; the error names what is wrong. Compiling
/// it is [`compile`]'s job, off the async workers.
pub(super) fn validate(definition: Value) -> Result<Rule, Error> {
    let rule: Rule = serde_json::from_value(definition)
        .map_err(|e| Error::invalid("rule", format!("not a valid rule: {e}")))?;
    let id_ok = !rule.id.is_empty()
        && rule.id.len() <= 128
        && rule
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !id_ok {
        return Err(Error::invalid(
            "id",
            "a rule id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
        ));
    }
    // Paths under /api/v1/rules/ that are not rules.
    if RESERVED_IDS.contains(&rule.id.as_str()) {
        return Err(Error::invalid(
            "id",
            format!(
                "`{}` names an endpoint under /api/v1/rules/; choose another id",
                rule.id
            ),
        ));
    }
    input::text("name", &rule.name, MAX_NAME)?;
    input::text("category", &rule.category, 64)?;
    input::text("description", &rule.description, MAX_PROSE)?;
    if let RuleKind::Keyword { keywords, .. } = &rule.kind {
        if keywords.len() > MAX_KEYWORDS_PER_RULE {
            return Err(Error::invalid(
                "keywords",
                format!("a rule has at most {MAX_KEYWORDS_PER_RULE} keywords"),
            ));
        }
    }
    if rule.exceptions.literals.len() + rule.exceptions.regexes.len() > MAX_EXCEPTIONS {
        return Err(Error::invalid(
            "exceptions",
            format!("a rule has at most {MAX_EXCEPTIONS} exceptions"),
        ));
    }
    Ok(rule)
}

/// Compiles the rule alone; disabled rules too, so enabling one later cannot fail.
async fn compile(state: &AppState, rule: &Rule) -> Result<(), Error> {
    let mut check = rule.clone();
    check.enabled = true;
    state.cpu.compile(vec![check]).await.map(drop)
}

/// The set stays within its bounds with `rule` in it (serialized with other rule changes,
/// so two at once cannot both squeeze in).
async fn check_set(tx: &mut Transaction<'_, Postgres>, rule: &Rule) -> Result<(), Error> {
    store::lock_set(&mut **tx).await?;
    let (rules, keywords) = store::size_without(&mut **tx, &rule.id).await?;
    let own = match &rule.kind {
        RuleKind::Keyword { keywords, .. } => keywords.len() as i64,
        _ => 0,
    };
    if rules + 1 > MAX_RULES {
        return Err(Error::Conflict(format!(
            "a rule set holds at most {MAX_RULES} rules"
        )));
    }
    if keywords + own > MAX_KEYWORDS_PER_SET {
        return Err(Error::Conflict(format!(
            "the rule set would hold {} keywords; at most {MAX_KEYWORDS_PER_SET}",
            keywords + own
        )));
    }
    Ok(())
}

fn to_value(rule: &Rule) -> Result<Value, Error> {
    serde_json::to_value(rule).map_err(|e| Error::Internal(e.to_string()))
}

#[derive(Serialize, ToSchema)]
pub struct RuleList {
    /// Rule definitions, each with `updated_at` and `updated_by`.
    rules: Vec<Document>,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<RuleList>, Error> {
    let rules = store::list(&state.pool)
        .await?
        .into_iter()
        .map(with_meta)
        .collect();
    Ok(Json(RuleList { rules }))
}

fn with_meta(stored: store::Stored) -> Document {
    let mut definition = stored.definition;
    definition["updated_at"] = super::time::format(stored.updated_at).into();
    definition["updated_by"] = stored.updated_by.into();
    Document(definition)
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Document>, Error> {
    let stored = store::get(&state.pool, &id).await?;
    Ok(Json(with_meta(stored.ok_or(Error::NotFound)?)))
}

/// The current definition, locked for the rest of the transaction.
pub(super) async fn current(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
) -> Result<Option<Rule>, Error> {
    store::lock_current(&mut **tx, id)
        .await?
        .map(|d| serde_json::from_value(d).map_err(|e| Error::Internal(e.to_string())))
        .transpose()
}

/// The highest version the rule ever had, deleted ones included, so versions never repeat.
pub(super) async fn last_version(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
) -> Result<u32, Error> {
    let v = store::last_version(&mut **tx, id).await?;
    Ok(u32::try_from(v.unwrap_or(0)).unwrap_or(u32::MAX))
}

/// Stores the rule as its new version and audits the change; `details` (an object) joins
/// the audit row's.
pub(super) async fn save(
    mut tx: Transaction<'_, Postgres>,
    principal: &Principal,
    ip: Option<std::net::IpAddr>,
    action: &str,
    rule: &Rule,
    details: Value,
) -> Result<Json<Document>, Error> {
    let mut details = details;
    details["version"] = rule.version.into();
    store::upsert(&mut *tx, &rule.id, &to_value(rule)?, &principal.name).await?;
    audit::record(
        &mut *tx,
        Entry {
            actor: &principal.name,
            action,
            target: Some(&rule.id),
            success: true,
            ip,
            details,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Document(to_value(rule)?)))
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Body(Document(definition)): Body<Document>,
) -> Result<Json<Document>, Error> {
    let mut rule = validate(definition)?;
    compile(&state, &rule).await?;
    let mut tx = state.pool.begin().await?;
    check_set(&mut tx, &rule).await?;
    if current(&mut tx, &rule.id).await?.is_some() {
        return Err(Error::Conflict(format!(
            "rule `{}` already exists",
            rule.id
        )));
    }
    rule.version = last_version(&mut tx, &rule.id).await? + 1;
    save(tx, &principal, ip, "rule.create", &rule, json!({})).await
}

pub async fn replace(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(Document(definition)): Body<Document>,
) -> Result<Json<Document>, Error> {
    let mut rule = validate(definition)?;
    if rule.id != id {
        return Err(Error::invalid("id", "the rule's id must match the path"));
    }
    compile(&state, &rule).await?;
    let mut tx = state.pool.begin().await?;
    check_set(&mut tx, &rule).await?;
    let old = current(&mut tx, &id).await?.ok_or(Error::NotFound)?;
    rule.version = old.version.max(last_version(&mut tx, &id).await?) + 1;
    save(tx, &principal, ip, "rule.update", &rule, json!({})).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    enabled: Option<bool>,
    /// `enforce` or `shadow`.
    #[schema(value_type = Option<String>)]
    mode: Option<Mode>,
}

pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(toggle): Body<Toggle>,
) -> Result<Json<Document>, Error> {
    let mut tx = state.pool.begin().await?;
    let mut rule = current(&mut tx, &id).await?.ok_or(Error::NotFound)?;
    if let Some(enabled) = toggle.enabled {
        rule.enabled = enabled;
    }
    if let Some(mode) = toggle.mode {
        rule.mode = mode;
    }
    rule.version = rule.version.max(last_version(&mut tx, &id).await?) + 1;
    save(tx, &principal, ip, "rule.update", &rule, json!({})).await
}

pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, Error> {
    let mut tx = state.pool.begin().await?;
    // The trigger records who deleted it from the row's updated_by.
    store::sign(&mut *tx, &id, &principal.name).await?;
    if !store::delete(&mut *tx, &id).await? {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut *tx,
        Entry {
            actor: &principal.name,
            action: "rule.delete",
            target: Some(&id),
            success: true,
            ip,
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Deleted { deleted: id }))
}

pub async fn versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RuleVersions>, Error> {
    let rows = store::versions(&state.pool, &id).await?;
    if rows.is_empty() {
        return Err(Error::NotFound);
    }
    let versions = rows
        .into_iter()
        .map(|v| RuleVersion {
            seq: v.seq,
            changed_at: super::time::format(v.changed_at),
            changed_by: v.changed_by,
            deleted: v.definition.is_none(),
            version: v
                .definition
                .as_ref()
                .and_then(|d| d.get("version"))
                .and_then(Value::as_u64),
            definition: v.definition.map(Document),
        })
        .collect();
    Ok(Json(RuleVersions { id, versions }))
}

#[derive(Serialize, ToSchema)]
pub struct RuleVersions {
    id: String,
    /// Newest first.
    versions: Vec<RuleVersion>,
}

#[derive(Serialize, ToSchema)]
pub struct RuleVersion {
    /// Pass as `from`/`to` to the diff, or `seq` to restore.
    seq: i64,
    changed_at: String,
    changed_by: Option<String>,
    deleted: bool,
    version: Option<u64>,
    /// Null for a deletion.
    definition: Option<Document>,
}

async fn version(state: &AppState, id: &str, seq: i64) -> Result<Option<Value>, Error> {
    store::version(&state.pool, id, seq)
        .await?
        .ok_or_else(|| Error::invalid("seq", format!("rule `{id}` has no version {seq}")))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    from: i64,
    to: i64,
}

/// Field-by-field differences between two versions (by `seq` from the versions list).
pub async fn diff(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(q): Params<DiffQuery>,
) -> Result<Json<RuleDiff>, Error> {
    let from = version(&state, &id, q.from).await?.unwrap_or(Value::Null);
    let to = version(&state, &id, q.to).await?.unwrap_or(Value::Null);
    let keys: BTreeSet<&String> = [&from, &to]
        .iter()
        .filter_map(|v| v.as_object())
        .flat_map(|o| o.keys())
        .collect();
    let changes = keys
        .into_iter()
        .filter(|k| from.get(k.as_str()) != to.get(k.as_str()))
        .map(|k| FieldChange {
            field: k.clone(),
            from: from.get(k.as_str()).cloned(),
            to: to.get(k.as_str()).cloned(),
        })
        .collect();
    Ok(Json(RuleDiff {
        id,
        from: q.from,
        to: q.to,
        changes,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RuleDiff {
    id: String,
    from: i64,
    to: i64,
    changes: Vec<FieldChange>,
}

/// A top-level field of the definition that differs; null where it is absent.
#[derive(Serialize, ToSchema)]
pub struct FieldChange {
    field: String,
    #[schema(value_type = Option<Object>)]
    from: Option<Value>,
    #[schema(value_type = Option<Object>)]
    to: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    seq: i64,
}

/// Makes an old version current again, as a new version (history only grows).
pub async fn restore(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(restore): Body<Restore>,
) -> Result<Json<Document>, Error> {
    let definition = version(&state, &id, restore.seq)
        .await?
        .ok_or_else(|| Error::invalid("seq", "that version is a deletion"))?;
    let mut rule = validate(definition)?;
    compile(&state, &rule).await?;
    let mut tx = state.pool.begin().await?;
    check_set(&mut tx, &rule).await?;
    let current_version = current(&mut tx, &id).await?.map_or(0, |r| r.version);
    rule.version = current_version.max(last_version(&mut tx, &id).await?) + 1;
    save(tx, &principal, ip, "rule.restore", &rule, json!({})).await
}

#[derive(Serialize, ToSchema)]
pub struct Templates {
    /// Every built-in pack with its rules.
    #[schema(value_type = Vec<Object>)]
    packs: Vec<Pack>,
}

pub async fn templates() -> Result<Json<Templates>, Error> {
    let packs = Pack::names()
        .map(|name| Pack::builtin(name).map_err(|e| Error::Internal(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Templates { packs }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Test {
    /// A draft rule; without it the active set from the database is used.
    #[schema(value_type = Option<Object>)]
    rule: Option<Value>,
    /// Events as the gateways publish them.
    #[schema(value_type = Vec<Object>)]
    events: Vec<Value>,
    threshold: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct TestResult {
    /// Per event, in order: `{event_id, verdict}` or `{error}`.
    #[schema(value_type = Vec<Object>)]
    verdicts: Vec<Value>,
    /// Stored rules left out because they do not parse or compile.
    rejected_rules: Vec<Rejected>,
}

#[derive(Serialize, ToSchema)]
pub struct Rejected {
    id: String,
    error: String,
}

/// Evaluates sample events without storing anything. Compiling and scanning run as one job
/// on the CPU pool, which stops between events once the request has timed out.
pub async fn test(
    State(state): State<AppState>,
    Body(test): Body<Test>,
) -> Result<Json<TestResult>, Error> {
    if test.events.is_empty() || test.events.len() > MAX_TEST_EVENTS {
        return Err(Error::invalid(
            "events",
            format!("give 1 to {MAX_TEST_EVENTS} events"),
        ));
    }
    let draft = test.rule.is_some();
    let (rules, mut rejected) = match test.rule {
        Some(definition) => {
            let mut rule = validate(definition)?;
            rule.enabled = true;
            (vec![rule], Vec::new())
        }
        None => active(&state).await?,
    };
    let threshold = test.threshold.unwrap_or(1);
    let events = test.events;
    let (more_rejected, verdicts) = state
        .cpu
        .run(move |cancelled| {
            let (set, rejected) = match RuleSet::build(rules.clone()) {
                Ok(set) => (set, Vec::new()),
                Err(e) if draft => return Err(Error::invalid("rule", e.to_string())),
                // Only when the whole set fails: find the rules that do not compile.
                Err(_) => split(rules)?,
            };
            let set = set.with_threshold(threshold);
            let mut verdicts = Vec::with_capacity(events.len());
            for event in &events {
                if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let bytes = serde_json::to_vec(event).unwrap_or_default();
                verdicts.push(match Event::parse(&bytes, None) {
                    Ok(event) => json!({ "event_id": event.id, "verdict": set.evaluate(&event) }),
                    Err(e) => json!({ "error": { "code": e.code(), "message": e.to_string() } }),
                });
            }
            Ok((rejected, verdicts))
        })
        .await??;
    rejected.extend(more_rejected);
    Ok(Json(TestResult {
        verdicts,
        rejected_rules: rejected,
    }))
}

/// The rules that compile on their own, as one set, and the ones that do not.
fn split(rules: Vec<Rule>) -> Result<(RuleSet, Vec<Rejected>), Error> {
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    for rule in rules {
        match RuleSet::build(vec![rule.clone()]) {
            Ok(_) => good.push(rule),
            Err(e) => rejected.push(Rejected {
                id: rule.id,
                error: e.to_string(),
            }),
        }
    }
    let set = RuleSet::build(good).map_err(|e| Error::invalid("rule", e.to_string()))?;
    Ok((set, rejected))
}

/// The stored rules the consumer would run; ones that do not parse are reported.
async fn active(state: &AppState) -> Result<(Vec<Rule>, Vec<Rejected>), Error> {
    let rows = store::definitions(&state.pool).await?;
    let mut rules = Vec::new();
    let mut rejected = Vec::new();
    for (id, definition) in rows {
        match validate(definition) {
            Ok(rule) => rules.push(rule),
            Err(e) => rejected.push(Rejected {
                id,
                error: e.to_string(),
            }),
        }
    }
    Ok((rules, rejected))
}
