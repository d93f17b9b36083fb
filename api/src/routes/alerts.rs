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
use utoipa::ToSchema;

use super::{Deleted, Document};
use sqlx::{Postgres, Transaction};

use crate::auth::{ClientIp, Principal};
use crate::extract::{Body, Path};
use crate::state::AppState;
use crate::store::alerts::{self as store, RouteRow};
use crate::store::audit::{self, Entry};
use crate::Error;

pub const MAX_ID: usize = 64;
const MAX_NAME: usize = 200;
const MAX_SLACK_CHANNEL: usize = 80;
/// Matcher entries (globs, CIDRs, names) and how many of them a list may hold.
const MAX_MATCHER: usize = 200;
const MAX_MATCHERS: usize = 100;
const MAX_DESTINATIONS: usize = 20;
const MAX_POSITION: i64 = 1_000_000;

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
    let found = store::lock_destinations(&mut **tx, &definition.destinations).await?;
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
#[derive(Serialize, ToSchema)]
pub struct Routes {
    /// In evaluation order.
    routes: Vec<RouteRow>,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Routes>, Error> {
    let routes = store::routes(&state.pool).await?;
    Ok(Json(Routes { routes }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RouteRow>, Error> {
    let route = store::route(&state.pool, &id).await?;
    route.map(Json).ok_or(Error::NotFound)
}

/// Without a `position` the route goes after the last one.
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Body(Document(body)): Body<Document>,
) -> Result<Json<RouteRow>, Error> {
    let (route, position) = parse(body)?;
    let definition = &route.definition;
    let mut tx = state.pool.begin().await?;
    check_destinations(&mut tx, definition).await?;
    let value = to_value(definition)?;
    let row =
        store::insert_route(&mut *tx, &definition.id, position, &value, &principal.name).await?;
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
    Body(Document(body)): Body<Document>,
) -> Result<Json<RouteRow>, Error> {
    let (route, position) = parse(body)?;
    let definition = &route.definition;
    if definition.id != id {
        return Err(Error::invalid("id", "the route's id must match the path"));
    }
    let mut tx = state.pool.begin().await?;
    check_destinations(&mut tx, definition).await?;
    let value = to_value(definition)?;
    let row = store::update_route(&mut *tx, &id, position, &value, &principal.name).await?;
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
) -> Result<Json<Deleted>, Error> {
    let mut tx = state.pool.begin().await?;
    let version = store::delete_route(&mut *tx, &id).await?;
    let version = version.ok_or(Error::NotFound)?;
    store::sign_route_deletion(&mut *tx, &id, &principal.name).await?;
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
    Ok(Json(Deleted { deleted: id }))
}

/// Every version, newest first; a deletion has no definition.
pub async fn versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RouteVersions>, Error> {
    let rows = store::route_versions(&state.pool, &id).await?;
    if rows.is_empty() {
        return Err(Error::NotFound);
    }
    let versions = rows
        .into_iter()
        .map(|v| RouteVersion {
            seq: v.seq,
            version: v.version,
            position: v.position,
            changed_at: super::time::format(v.changed_at),
            changed_by: v.changed_by,
            deleted: v.definition.is_none(),
            definition: v.definition.map(Document),
        })
        .collect();
    Ok(Json(RouteVersions { id, versions }))
}

#[derive(Serialize, ToSchema)]
pub struct RouteVersions {
    id: String,
    /// Newest first.
    versions: Vec<RouteVersion>,
}

#[derive(Serialize, ToSchema)]
pub struct RouteVersion {
    seq: i64,
    version: i32,
    position: Option<i32>,
    changed_at: String,
    changed_by: Option<String>,
    deleted: bool,
    /// Null for a deletion.
    definition: Option<Document>,
}
