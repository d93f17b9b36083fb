//! Working a flag: triage status, assignee and notes (with history), and the audited reveal
//! of its content.

use axum::extract::State;
use axum::Json;
use flagstream_rules::content::Content;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::filter::STATUSES;
use crate::auth::{ClientIp, Principal};
use crate::extract::{Body, Path};
use crate::input::{self, MAX_PROSE};
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::flags::{self as store, Transition};
use crate::{users, Error};

const MAX_BULK: usize = 1_000;

/// The triage workflow: new → triaged → true_positive | false_positive | resolved; a
/// verdict can be resolved, and anything decided can be reopened to triaged.
fn allowed(from: &str, to: &str) -> bool {
    from == to
        || matches!(
            (from, to),
            ("new", "triaged")
                | ("triaged", "true_positive" | "false_positive" | "resolved")
                | ("true_positive" | "false_positive", "resolved")
                | ("true_positive" | "false_positive" | "resolved", "triaged")
        )
}

fn check_status(status: &str) -> Result<(), Error> {
    if STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(Error::invalid(
            "status",
            format!("`{status}` is not one of {}", STATUSES.join(", ")),
        ))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Update {
    status: Option<String>,
    /// A username; an empty string clears the assignee.
    assignee: Option<String>,
    note: Option<String>,
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
    Body(update): Body<Update>,
) -> Result<Json<Triaged>, Error> {
    if let Some(s) = &update.status {
        check_status(s)?;
    }
    input::optional("note", update.note.as_deref(), MAX_PROSE)?;
    if let Some(a) = update.assignee.as_deref().filter(|a| !a.is_empty()) {
        users::check_username(a).map_err(|_| {
            Error::invalid("assignee", "an assignee is a username (1 to 64 characters)")
        })?;
    }
    let mut tx = state.pool.begin().await?;
    let (from, assignee) = store::lock_triage(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound)?;
    let to = update.status.clone().unwrap_or_else(|| from.clone());
    if !allowed(&from, &to) {
        return Err(Error::Conflict(format!(
            "a flag cannot go from `{from}` to `{to}`"
        )));
    }
    let assignee = match update.assignee {
        Some(a) if a.is_empty() => None,
        Some(a) => Some(a),
        None => assignee,
    };
    store::set_triage(&mut *tx, id, &to, assignee.as_deref()).await?;
    let transition = Transition {
        flag_id: id,
        actor: &principal.name,
        from: &from,
        to: &to,
        assignee: assignee.as_deref(),
        note: update.note.as_deref(),
    };
    store::record_transition(&mut *tx, transition).await?;
    tx.commit().await?;
    Ok(Json(Triaged {
        id,
        status: to,
        assignee,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Triaged {
    id: i64,
    status: String,
    assignee: Option<String>,
}

/// A bulk change: the flags changed, and the ones left as they were with why.
#[derive(Serialize, ToSchema)]
pub struct BulkResult {
    updated: Vec<i64>,
    skipped: Vec<Skipped>,
}

#[derive(Serialize, ToSchema)]
pub struct Skipped {
    id: i64,
    reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bulk {
    ids: Vec<i64>,
    status: String,
    note: Option<String>,
}

/// All allowed changes land in one transaction; the rest are reported, not applied.
pub async fn bulk(
    State(state): State<AppState>,
    principal: Principal,
    Body(bulk): Body<Bulk>,
) -> Result<Json<BulkResult>, Error> {
    check_status(&bulk.status)?;
    input::optional("note", bulk.note.as_deref(), MAX_PROSE)?;
    if bulk.ids.is_empty() || bulk.ids.len() > MAX_BULK {
        return Err(Error::invalid(
            "ids",
            format!("give 1 to {MAX_BULK} flag ids"),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let rows = store::lock_statuses(&mut *tx, &bulk.ids).await?;
    let mut updated = Vec::new();
    let mut from = Vec::new();
    let mut skipped = Vec::new();
    for (id, status) in &rows {
        if allowed(status, &bulk.status) {
            updated.push(*id);
            from.push(status.clone());
        } else {
            skipped.push(Skipped {
                id: *id,
                reason: format!("cannot go from `{status}`"),
            });
        }
    }
    for id in &bulk.ids {
        if !rows.iter().any(|(r, _)| r == id) {
            skipped.push(Skipped {
                id: *id,
                reason: "not found".into(),
            });
        }
    }
    store::set_statuses(&mut *tx, &updated, &bulk.status).await?;
    let note = bulk.note.as_deref();
    store::record_bulk_transition(
        &mut *tx,
        &updated,
        &from,
        &principal.name,
        &bulk.status,
        note,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(BulkResult { updated, skipped }))
}

pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<History>, Error> {
    if !store::exists(&state.pool, id).await? {
        return Err(Error::NotFound);
    }
    let changes = store::history(&state.pool, id).await?;
    Ok(Json(History {
        id,
        history: changes,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct History {
    id: i64,
    history: Vec<store::Change>,
}

/// A flag's content, opened.
#[derive(Serialize, ToSchema)]
pub struct Revealed {
    id: i64,
    event_id: String,
    /// How it was stored: `encrypted` or `redacted`.
    mode: String,
    /// Prompt, response and the other scanned fields.
    #[schema(value_type = Object)]
    content: Content,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reveal {
    reason: String,
}

/// The decrypted content, for a stated reason. The audit row is written before the content
/// leaves: no audit row, no content.
pub async fn reveal(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
    Body(reveal): Body<Reveal>,
) -> Result<Json<Revealed>, Error> {
    let reason = input::text("reason", reveal.reason.trim(), 500)?;
    if reason.chars().count() < 3 {
        return Err(Error::invalid(
            "reason",
            "a reason of 3 to 500 characters is required",
        ));
    }
    let row = store::sealed(&state.pool, id).await?;
    let target = id.to_string();
    let Some(store::Sealed {
        event_id,
        content_mode: mode,
        content: stored,
    }) = row
    else {
        // Probing for flag ids is itself worth a trail.
        audit::record(
            &state.pool,
            Entry {
                actor: &principal.name,
                action: "reveal",
                target: Some(&target),
                success: false,
                ip,
                details: json!({ "reason": reason, "error": "no such flag" }),
            },
        )
        .await?;
        return Err(Error::NotFound);
    };
    let opened: Result<Content, String> = match (mode.as_str(), stored) {
        ("encrypted", Some(blob)) => match &state.keys {
            None => Err("no content key is configured on the API".into()),
            Some(keys) => keys
                .open(&event_id, &blob)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())),
        },
        ("redacted", Some(json)) => serde_json::from_slice(&json).map_err(|e| e.to_string()),
        _ => Err("no content is stored for this flag".into()),
    };
    audit::record(
        &state.pool,
        Entry {
            actor: &principal.name,
            action: "reveal",
            target: Some(&target),
            success: opened.is_ok(),
            ip,
            details: json!({ "reason": reason, "mode": mode,
                             "error": opened.as_ref().err() }),
        },
    )
    .await?;
    let content = opened.map_err(Error::Conflict)?;
    Ok(Json(Revealed {
        id,
        event_id,
        mode,
        content,
    }))
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn the_workflow() {
        assert!(allowed("new", "triaged"));
        assert!(allowed("triaged", "false_positive"));
        assert!(allowed("true_positive", "resolved"));
        assert!(allowed("resolved", "triaged"));
        assert!(allowed("new", "new"));
        assert!(!allowed("new", "true_positive"));
        assert!(!allowed("resolved", "new"));
        assert!(!allowed("triaged", "new"));
    }
}
