//! Outbox → deliveries: each stored flag is matched against the routes, in order, and
//! joins a delivery per route and destination, grouped as the route says.

use std::collections::HashMap;

use flagstream_rules::alert::{route, AlertFlag, Route, RouteDefinition};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::alerts::flags;
use crate::metrics::Metrics;
use crate::Error;

/// Flags claimed per transaction.
const CLAIM: i64 = 200;

/// Routes up to [`CLAIM`] outbox rows in one transaction; returns how many were claimed.
pub async fn route_pending(pool: &PgPool, metrics: &Metrics) -> Result<usize, Error> {
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query!(
        "SELECT flag_id, created_at FROM alert_outbox ORDER BY flag_id
         LIMIT $1 FOR UPDATE SKIP LOCKED",
        CLAIM
    )
    .fetch_all(&mut *tx)
    .await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let (routes, versions) = load_routes(&mut tx).await?;
    let destinations: HashMap<String, String> =
        sqlx::query!("SELECT id, kind FROM alert_destinations")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|d| (d.id, d.kind))
            .collect();
    let ids: Vec<i64> = claimed.iter().map(|c| c.flag_id).collect();
    let committed_at: HashMap<i64, OffsetDateTime> = claimed
        .into_iter()
        .map(|c| (c.flag_id, c.created_at))
        .collect();
    for flag in flags::load(&mut tx, &ids).await? {
        for r in route(&routes, &flag) {
            for destination in &r.definition.destinations {
                let Some(kind) = destinations.get(destination) else {
                    tracing::warn!(route = r.id(), %destination, "route names a missing destination");
                    continue;
                };
                let target = Target {
                    route: r,
                    version: versions[r.id()],
                    destination,
                    kind,
                };
                enqueue(&mut tx, &target, &flag, committed_at[&flag.id], metrics).await?;
            }
        }
    }
    sqlx::query!("DELETE FROM alert_outbox WHERE flag_id = ANY($1)", &ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.len())
}

/// A route and destination a flag goes to.
struct Target<'a> {
    route: &'a Route,
    version: i32,
    destination: &'a str,
    kind: &'a str,
}

/// The stored routes in order, and their versions; a route that no longer compiles (it was
/// valid when stored) is skipped and reported.
async fn load_routes(conn: &mut PgConnection) -> Result<(Vec<Route>, HashMap<String, i32>), Error> {
    let rows =
        sqlx::query!("SELECT id, version, definition FROM alert_routes ORDER BY position, id")
            .fetch_all(&mut *conn)
            .await?;
    let mut routes = Vec::with_capacity(rows.len());
    let mut versions = HashMap::with_capacity(rows.len());
    for row in rows {
        let (id, version, definition) = (row.id, row.version, row.definition);
        versions.insert(id.clone(), version);
        let compiled = serde_json::from_value::<RouteDefinition>(definition)
            .map_err(|e| e.to_string())
            .and_then(|d| Route::compile(d).map_err(|e| e.to_string()));
        match compiled {
            Ok(route) => routes.push(route),
            Err(e) => tracing::error!(route = %id, error = %e, "alert route skipped"),
        }
    }
    Ok((routes, versions))
}

/// Puts one flag into its group's notification for a route and destination:
/// - a notification still gathering (within `group_wait`, not yet attempted) takes it;
/// - otherwise, within `repeat_interval` of the last one sent, or while one is being sent,
///   it is counted as suppressed and the count rides on the group's next message;
/// - otherwise a new notification is created, sent after `group_wait`.
async fn enqueue(
    tx: &mut PgConnection,
    target: &Target<'_>,
    flag: &AlertFlag,
    committed_at: OffsetDateTime,
    metrics: &Metrics,
) -> Result<(), Error> {
    let Target {
        route,
        version,
        destination,
        kind,
    } = *target;
    let group_key = route.group_key(flag);
    sqlx::query!(
        "INSERT INTO alert_groups (route_id, destination_id, group_key) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        route.id(),
        destination,
        &group_key
    )
    .execute(&mut *tx)
    .await?;
    let group = sqlx::query!(
        r#"SELECT open_delivery,
                  coalesce(last_sent_at + make_interval(secs => $4) > now(), false)
                      AS "recently_sent!"
           FROM alert_groups WHERE route_id = $1 AND destination_id = $2 AND group_key = $3
           FOR UPDATE"#,
        route.id(),
        destination,
        &group_key,
        route.definition.repeat_interval_secs as f64
    )
    .fetch_one(&mut *tx)
    .await?;
    let (open, recently_sent) = (group.open_delivery, group.recently_sent);
    if let Some(open) = open {
        let joined = sqlx::query!(
            "UPDATE alert_deliveries SET flag_ids = flag_ids || $2
             WHERE id = $1 AND status = 'pending' AND attempts = 0 AND lease_until IS NULL",
            open,
            &[flag.id] as &[i64]
        )
        .execute(&mut *tx)
        .await?;
        if joined.rows_affected() == 1 {
            return Ok(());
        }
    }
    if open.is_some() || recently_sent {
        sqlx::query!(
            "UPDATE alert_groups SET suppressed = suppressed + 1
             WHERE route_id = $1 AND destination_id = $2 AND group_key = $3",
            route.id(),
            destination,
            &group_key
        )
        .execute(&mut *tx)
        .await?;
        metrics.alert(&metrics.alerts_suppressed, kind, "repeat_interval");
        return Ok(());
    }
    sqlx::query!(
        "WITH g AS (
             SELECT suppressed FROM alert_groups
             WHERE route_id = $1 AND destination_id = $2 AND group_key = $3
         ), d AS (
             INSERT INTO alert_deliveries (key, route_id, route_version, destination_id,
                 destination_kind, group_key, flag_ids, suppressed, next_attempt_at, flagged_at)
             SELECT $4, $1, $5, $2, $6, $3, ARRAY[$7::bigint], g.suppressed,
                    now() + make_interval(secs => $8), $9
             FROM g
             RETURNING id
         )
         UPDATE alert_groups SET open_delivery = (SELECT id FROM d), suppressed = 0
         WHERE route_id = $1 AND destination_id = $2 AND group_key = $3",
        route.id(),
        destination,
        &group_key,
        delivery_key(),
        version,
        kind,
        flag.id,
        route.definition.group_wait_secs as f64,
        committed_at
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// 128 random bits, hex: unique across installations, so a receiver can deduplicate on it.
fn delivery_key() -> String {
    let bits: u128 = rand::random();
    format!("fs-{bits:032x}")
}
