//! The alert delivery log: one row per notification to one destination, as the consumer's
//! dispatcher writes it, and the resend of a failed one.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{Postgres, QueryBuilder};
use time::OffsetDateTime;

use super::alerts::MAX_ID;
use crate::audit::{self, Entry};
use crate::auth::{ClientIp, Principal};
use crate::extract::{Params, Path};
use crate::state::AppState;
use crate::Error;

const STATUSES: [&str; 3] = ["pending", "sent", "failed"];
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

#[derive(Serialize, sqlx::FromRow)]
pub struct Delivery {
    id: i64,
    key: String,
    route_id: String,
    route_version: i32,
    destination_id: String,
    destination_kind: String,
    group_key: String,
    flag_ids: Vec<i64>,
    suppressed: i64,
    status: String,
    attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    next_attempt_at: OffsetDateTime,
    last_status: Option<i32>,
    last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    flagged_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    sent_at: Option<OffsetDateTime>,
    latency_ms: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, key, route_id, route_version, destination_id, destination_kind,
    group_key, flag_ids, suppressed, status, attempts, next_attempt_at, last_status, last_error,
    flagged_at, created_at, sent_at, latency_ms";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    status: Option<String>,
    route: Option<String>,
    destination: Option<String>,
    /// Deliveries older than this id (the `next_cursor` of the previous page).
    before: Option<i64>,
    limit: Option<i64>,
}

/// The delivery log, newest first by id, so pages stay exact while deliveries are added.
pub async fn list(
    State(state): State<AppState>,
    Params(q): Params<DeliveryQuery>,
) -> Result<Json<Value>, Error> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}, got {limit}"),
        ));
    }
    if let Some(s) = &q.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(Error::invalid(
                "status",
                format!("`status` is one of {}", STATUSES.join(", ")),
            ));
        }
    }
    for (field, value) in [("route", &q.route), ("destination", &q.destination)] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_ID) {
            return Err(Error::invalid(
                field,
                format!("`{field}` is at most {MAX_ID} characters"),
            ));
        }
    }
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE true"
    ));
    if let Some(s) = q.status {
        qb.push(" AND status = ").push_bind(s);
    }
    if let Some(r) = q.route {
        qb.push(" AND route_id = ").push_bind(r);
    }
    if let Some(d) = q.destination {
        qb.push(" AND destination_id = ").push_bind(d);
    }
    if let Some(b) = q.before {
        qb.push(" AND id < ").push_bind(b);
    }
    qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit + 1);
    let mut rows: Vec<Delivery> = qb.build_query_as().fetch_all(&state.pool).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(json!({ "deliveries": rows, "next_cursor": next })))
}

/// Puts a failed delivery back in the queue, due now, with a fresh attempt budget.
pub async fn resend(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
) -> Result<Json<Delivery>, Error> {
    let mut tx = state.pool.begin().await?;
    let current: Option<(String, i32)> =
        sqlx::query_as("SELECT status, attempts FROM alert_deliveries WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let (status, attempts) = current.ok_or(Error::NotFound)?;
    if status != "failed" {
        return Err(Error::Conflict(format!(
            "delivery {id} is `{status}`: only a failed delivery can be resent"
        )));
    }
    let delivery: Delivery = sqlx::query_as(&format!(
        "UPDATE alert_deliveries
         SET status = 'pending', attempts = 0, next_attempt_at = now(), lease_until = NULL,
             last_error = NULL
         WHERE id = $1
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let target = id.to_string();
    let details = json!({
        "route_id": delivery.route_id,
        "destination_id": delivery.destination_id,
        "previous_attempts": attempts,
    });
    audit::record(
        &mut *tx,
        Entry {
            actor: &principal.name,
            action: "alert_delivery.resend",
            target: Some(&target),
            success: true,
            ip,
            details,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(delivery))
}
