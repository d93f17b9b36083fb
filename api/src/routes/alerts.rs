//! Alert routes: which stored flags go to which destinations, grouped how. Every change is
//! validated by compiling the route with the code the consumer's dispatcher runs, versioned
//! (the `alert_routes` trigger appends to `alert_route_versions`) and audited in the same
//! transaction. The dry-run is in `dry_run.rs`.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::Json;
use flagstream_rules::alert::{Matchers, Route, RouteDefinition};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::types::Json as SqlJson;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;

use crate::audit::{self, Entry};
use crate::auth::{ClientIp, Principal};
use crate::extract::{Body, Path};
use crate::state::AppState;
use crate::Error;

pub const MAX_ID: usize = 64;
const MAX_NAME: usize = 200;
const MAX_SLACK_CHANNEL: usize = 80;
/// Matcher entries (globs, CIDRs, names) and how many of them a list may hold.
const MAX_MATCHER: usize = 200;
const MAX_MATCHERS: usize = 100;
const MAX_DESTINATIONS: usize = 20;
const MAX_POSITION: i64 = 1_000_000;

/// A route as the API shows it; `definition` is the stored `RouteDefinition`.
#[derive(Serialize, sqlx::FromRow)]
pub struct RouteRow {
    id: String,
    position: i32,
    version: i32,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    updated_by: Option<String>,
    definition: SqlJson<Value>,
}

const COLUMNS: &str = "id, position, version, updated_at, updated_by, definition";

fn too_long(field: &'static str, value: &str, max: usize) -> Result<(), Error> {
    if value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("`{field}` is at most {max} characters"),
        ));
    }
    Ok(())
}

/// Every user string of a route within its bound, before compiling it.
fn check_bounds(d: &RouteDefinition) -> Result<(), Error> {
    too_long("id", &d.id, MAX_ID)?;
    too_long("name", &d.name, MAX_NAME)?;
    if let Some(channel) = &d.slack_channel {
        too_long("slack_channel", channel, MAX_SLACK_CHANNEL)?;
    }
    if d.destinations.len() > MAX_DESTINATIONS {
        return Err(Error::invalid(
            "destinations",
            format!("at most {MAX_DESTINATIONS} destinations"),
        ));
    }
    let mut seen = BTreeSet::new();
    for destination in &d.destinations {
        too_long("destinations", destination, MAX_ID)?;
        if !seen.insert(destination.as_str()) {
            return Err(Error::invalid(
                "destinations",
                format!("destination `{destination}` is listed twice"),
            ));
        }
    }
    if d.group_by.len() > flagstream_rules::alert::GROUP_FIELDS.len() {
        return Err(Error::invalid("group_by", "too many group_by fields"));
    }
    let Matchers {
        categories,
        rules,
        models,
        providers,
        cidrs,
        users,
        apps,
        ..
    } = &d.matchers;
    for list in [categories, rules, models, providers, cidrs, users, apps] {
        if list.len() > MAX_MATCHERS {
            return Err(Error::invalid(
                "match",
                format!("a matcher lists at most {MAX_MATCHERS} entries"),
            ));
        }
        for entry in list {
            too_long("match", entry, MAX_MATCHER)?;
        }
    }
    Ok(())
}

/// The body of a create or replace: a `RouteDefinition` plus an optional `position`.
fn parse(body: Value) -> Result<(Route, Option<i32>), Error> {
    let Value::Object(mut fields) = body else {
        return Err(Error::invalid("route", "a route is a JSON object"));
    };
    let position = match fields.remove("position") {
        None | Some(Value::Null) => None,
        Some(p) => match p.as_i64() {
            Some(p) if (0..=MAX_POSITION).contains(&p) => i32::try_from(p).ok(),
            _ => {
                return Err(Error::invalid(
                    "position",
                    format!("`position` is an integer from 0 to {MAX_POSITION}"),
                ))
            }
        },
    };
    let definition: RouteDefinition = serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::invalid("route", format!("not a valid route: {e}")))?;
    check_bounds(&definition)?;
    let route = Route::compile(definition).map_err(|e| Error::invalid("route", e.to_string()))?;
    Ok((route, position))
}

fn to_value(definition: &RouteDefinition) -> Result<Value, Error> {
    serde_json::to_value(definition).map_err(|e| Error::Internal(e.to_string()))
}

/// Every destination of the route exists; they stay locked (shared) until the transaction
/// ends, so a concurrent delete of one waits and then sees this route.
async fn check_destinations(
    tx: &mut Transaction<'_, Postgres>,
    definition: &RouteDefinition,
) -> Result<(), Error> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM alert_destinations WHERE id = ANY($1) ORDER BY id FOR SHARE",
    )
    .bind(&definition.destinations)
    .fetch_all(&mut **tx)
    .await?;
    let missing: Vec<String> = definition
        .destinations
        .iter()
        .filter(|d| !found.contains(d))
        .map(|d| format!("`{d}`"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(
            "destinations",
            format!("no such destination: {}", missing.join(", ")),
        ))
    }
}

async fn record(
    tx: &mut Transaction<'_, Postgres>,
    principal: &Principal,
    ip: Option<std::net::IpAddr>,
    action: &str,
    row: &RouteRow,
) -> Result<(), Error> {
    audit::record(
        &mut **tx,
        Entry {
            actor: &principal.name,
            action,
            target: Some(&row.id),
            success: true,
            ip,
            details: json!({ "version": row.version, "position": row.position }),
        },
    )
    .await
}

/// All routes in evaluation order; equal positions are ordered by id.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let routes: Vec<RouteRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alert_routes ORDER BY position, id"
    ))
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(json!({ "routes": routes })))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RouteRow>, Error> {
    let route: Option<RouteRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM alert_routes WHERE id = $1"))
            .bind(&id)
            .fetch_optional(&state.pool)
            .await?;
    route.map(Json).ok_or(Error::NotFound)
}

/// Without a `position` the route goes after the last one.
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Body(body): Body<Value>,
) -> Result<Json<RouteRow>, Error> {
    let (route, position) = parse(body)?;
    let definition = &route.definition;
    let mut tx = state.pool.begin().await?;
    check_destinations(&mut tx, definition).await?;
    // Versions continue after a deleted route's history, so they never repeat.
    let row: Option<RouteRow> = sqlx::query_as(&format!(
        "INSERT INTO alert_routes (id, position, definition, version, updated_at, updated_by)
         VALUES ($1,
                 COALESCE($2, (SELECT COALESCE(max(position), 0) + 1 FROM alert_routes)),
                 $3,
                 (SELECT COALESCE(max(version), 0) + 1 FROM alert_route_versions WHERE route_id = $1),
                 now(), $4)
         ON CONFLICT (id) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(&definition.id)
    .bind(position)
    .bind(to_value(definition)?)
    .bind(&principal.name)
    .fetch_optional(&mut *tx)
    .await?;
    let row = row.ok_or_else(|| {
        Error::Conflict(format!("alert route `{}` already exists", definition.id))
    })?;
    record(&mut tx, &principal, ip, "alert_route.create", &row).await?;
    tx.commit().await?;
    Ok(Json(row))
}

/// Replaces the definition (and the position, when given) as a new version.
pub async fn replace(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<RouteRow>, Error> {
    let (route, position) = parse(body)?;
    let definition = &route.definition;
    if definition.id != id {
        return Err(Error::invalid("id", "the route's id must match the path"));
    }
    let mut tx = state.pool.begin().await?;
    check_destinations(&mut tx, definition).await?;
    let row: Option<RouteRow> = sqlx::query_as(&format!(
        "UPDATE alert_routes
         SET definition = $2, position = COALESCE($3, position), version = version + 1,
             updated_at = now(), updated_by = $4
         WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(&id)
    .bind(to_value(definition)?)
    .bind(position)
    .bind(&principal.name)
    .fetch_optional(&mut *tx)
    .await?;
    let row = row.ok_or(Error::NotFound)?;
    record(&mut tx, &principal, ip, "alert_route.update", &row).await?;
    tx.commit().await?;
    Ok(Json(row))
}

pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let mut tx = state.pool.begin().await?;
    let version: Option<i32> =
        sqlx::query_scalar("DELETE FROM alert_routes WHERE id = $1 RETURNING version")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?;
    let version = version.ok_or(Error::NotFound)?;
    // The trigger records the deletion as the row's last editor; an UPDATE of updated_by
    // first would append a spurious version, so the deletion row is signed here instead.
    sqlx::query(
        "UPDATE alert_route_versions SET changed_by = $2
         WHERE seq = (SELECT max(seq) FROM alert_route_versions WHERE route_id = $1)
           AND definition IS NULL",
    )
    .bind(&id)
    .bind(&principal.name)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Entry {
            actor: &principal.name,
            action: "alert_route.delete",
            target: Some(&id),
            success: true,
            ip,
            details: json!({ "version": version }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "deleted": id })))
}

/// Every version, newest first; a deletion has no definition.
pub async fn versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    type Version = (
        i64,
        i32,
        Option<i32>,
        Option<Value>,
        OffsetDateTime,
        Option<String>,
    );
    let rows: Vec<Version> = sqlx::query_as(
        "SELECT seq, version, position, definition, changed_at, changed_by
         FROM alert_route_versions WHERE route_id = $1 ORDER BY seq DESC",
    )
    .bind(&id)
    .fetch_all(&state.pool)
    .await?;
    if rows.is_empty() {
        return Err(Error::NotFound);
    }
    let versions: Vec<Value> = rows
        .into_iter()
        .map(|(seq, version, position, definition, at, by)| {
            json!({
                "seq": seq,
                "version": version,
                "position": position,
                "changed_at": super::time::format(at),
                "changed_by": by,
                "deleted": definition.is_none(),
                "definition": definition,
            })
        })
        .collect();
    Ok(Json(json!({ "id": id, "versions": versions })))
}
