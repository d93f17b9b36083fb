//! The alert delivery log: one row per notification to one destination, as the consumer's
//! dispatcher writes it, and the resend of a failed one.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::alerts::MAX_ID;
use crate::auth::{ClientIp, Principal};
use crate::extract::{Params, Path};
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::deliveries::{self as store, Delivery, Filter};
use crate::Error;

const STATUSES: [&str; 3] = ["pending", "sent", "failed"];
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
) -> Result<Json<Deliveries>, Error> {
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
    let filter = Filter {
        status: q.status.as_deref(),
        route: q.route.as_deref(),
        destination: q.destination.as_deref(),
        before: q.before,
    };
    let mut rows = store::list(&state.pool, filter, limit + 1).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(Deliveries {
        deliveries: rows,
        next_cursor: next,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Deliveries {
    /// Newest first.
    deliveries: Vec<Delivery>,
    /// Pass as `before` for the next page; null on the last.
    next_cursor: Option<i64>,
}

/// Puts a failed delivery back in the queue, due now, with a fresh attempt budget.
pub async fn resend(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
) -> Result<Json<Delivery>, Error> {
    let mut tx = state.pool.begin().await?;
    let current = store::lock_status(&mut *tx, id).await?;
    let (status, attempts) = current.ok_or(Error::NotFound)?;
    if status != "failed" {
        return Err(Error::Conflict(format!(
            "delivery {id} is `{status}`: only a failed delivery can be resent"
        )));
    }
    let delivery = store::requeue(&mut *tx, id).await?;
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
