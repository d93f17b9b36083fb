use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::Params;
use crate::state::AppState;
use crate::store::audit as store;
use crate::Error;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    action: Option<String>,
    actor: Option<String>,
    /// Entries older than this id (the `next_before` of the previous page).
    before: Option<i64>,
    limit: Option<i64>,
}

/// Newest first, by id, so pages stay exact while entries are added.
pub async fn list(
    State(state): State<AppState>,
    Params(q): Params<AuditQuery>,
) -> Result<Json<AuditPage>, Error> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(Error::invalid("limit", "limit must be between 1 and 1000"));
    }
    let rows = store::list(
        &state.pool,
        q.action.as_deref(),
        q.actor.as_deref(),
        q.before,
        limit,
    )
    .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(AuditPage {
        entries: rows,
        next_before: next,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    entries: Vec<store::Row>,
    /// Pass as `before` for the next page; null on the last.
    next_before: Option<i64>,
}
