//! The dry-run of an alert route: renders, for one stored flag, exactly what the consumer's
//! dispatcher would send to each of the route's destinations. Sends and stores nothing but
//! the audit row.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use flagstream_rules::alert::{AlertFlag, DestinationKind, Message, Route, RouteDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::auth::{ClientIp, Principal};
use crate::extract::Path;
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::{store, Error};

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    /// Without it, the newest flag.
    flag_id: Option<i64>,
}

/// Renders what the route would send for one stored flag: whether it matches, the rules it
/// considers, the group and each destination's message body. Sends and stores nothing but
/// the audit row.
pub async fn test(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Rendered>, Error> {
    let body = body.map_err(|r| Error::Rejected {
        status: r.status(),
        message: r.body_text(),
    })?;
    let dry_run: DryRun = if body.iter().all(u8::is_ascii_whitespace) {
        DryRun::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::invalid("flag_id", format!("not a valid dry-run: {e}")))?
    };
    let stored = store::alerts::route_definition(&state.pool, &id).await?;
    let definition: RouteDefinition = serde_json::from_value(stored.ok_or(Error::NotFound)?)
        .map_err(|e| Error::Conflict(format!("the stored route does not parse: {e}")))?;
    let route = Route::compile(definition)
        .map_err(|e| Error::Conflict(format!("the stored route does not compile: {e}")))?;
    let flag = load_flag(&state.pool, dry_run.flag_id).await?;
    let kinds =
        store::alerts::destination_kinds(&state.pool, &route.definition.destinations).await?;
    let group_key = route.group_key(&flag);
    let flags = [flag];
    let message = Message {
        key: "dry-run",
        route: &route,
        group_key: &group_key,
        flags: &flags,
        suppressed: 0,
        api_base_url: state.alert_api_base_url.as_deref(),
    };
    let messages: Vec<RenderedMessage> = route
        .definition
        .destinations
        .iter()
        .map(|destination| {
            let kind = kinds
                .iter()
                .find(|(id, _)| id == destination)
                .and_then(|(_, kind)| {
                    DestinationKind::ALL
                        .into_iter()
                        .find(|k| k.as_str() == kind)
                });
            let body = match kind {
                Some(DestinationKind::Webhook) => message.webhook(),
                Some(DestinationKind::Slack) => message.slack(),
                Some(DestinationKind::Alertmanager) => message.alertmanager(),
                None => Value::Null,
            };
            RenderedMessage {
                destination: destination.clone(),
                kind: kind.map(DestinationKind::as_str),
                body,
            }
        })
        .collect();
    let [flag] = &flags;
    let matched = route.matches(flag);
    let considered = route
        .rule_ids(flag)
        .into_iter()
        .map(str::to_owned)
        .collect();
    audit::record(
        &state.pool,
        Entry {
            actor: &principal.name,
            action: "alert_route.test",
            target: Some(&id),
            success: true,
            ip,
            details: json!({ "flag_id": flag.id, "matched": matched }),
        },
    )
    .await?;
    Ok(Json(Rendered {
        flag_id: flag.id,
        route: id,
        matched,
        considered_rules: considered,
        group_key,
        messages,
    }))
}

/// What the route would do with the flag.
#[derive(Serialize, ToSchema)]
pub struct Rendered {
    route: String,
    flag_id: i64,
    matched: bool,
    /// The flag's rules the route's matchers look at.
    considered_rules: Vec<String>,
    group_key: String,
    messages: Vec<RenderedMessage>,
}

/// The body one destination would receive; null for a destination that no longer exists.
#[derive(Serialize, ToSchema)]
pub struct RenderedMessage {
    destination: String,
    kind: Option<&'static str>,
    body: Value,
}

/// Flag `id`, or the newest flag.
async fn load_flag(pool: &PgPool, id: Option<i64>) -> Result<AlertFlag, Error> {
    let stored = match id {
        Some(id) => store::flags::alert_flag(pool, id).await?,
        None => store::flags::newest_alert_flag(pool).await?,
    };
    serde_json::from_value(stored.ok_or(Error::NotFound)?)
        .map_err(|e| Error::Internal(format!("a stored flag does not parse: {e}")))
}
