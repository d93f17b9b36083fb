//! Alert destinations. A destination's URL (a Slack webhook URL is
//! itself a credential) and signing secret are sealed with the content keyring on the way
//! in and never leave again: responses, audit rows, errors and logs carry `display_url`
//! (scheme and host) only.

use axum::extract::State;
use axum::Json;
use flagstream_rules::alert::{DestinationKind, DestinationSecret};
use flagstream_rules::content::Keyring;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Deleted;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::alerts::MAX_ID;
use crate::auth::{ClientIp, Principal};
use crate::extract::{Body, Path};
use crate::state::AppState;
use crate::store::alerts::{self as store, NewDestination};
use crate::store::audit::{self, Entry};
use crate::Error;

const MAX_URL: usize = 2048;
const MAX_SECRET: usize = 512;

/// A destination as the API shows it: never the URL or the secret.
#[derive(Serialize, ToSchema)]
pub struct DestinationRow {
    id: String,
    kind: String,
    display_url: String,
    max_per_minute: i32,
    /// Whether a signing secret is set; null when the sealed part cannot be opened with the
    /// configured keyring (no key, or the key that sealed it is gone).
    signed: Option<bool>,
    version: i32,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    updated_by: Option<String>,
}

impl DestinationRow {
    /// The stored row's sealed part is opened in-process for `signed` only.
    fn opened(row: store::DestinationRow, keys: Option<&Keyring>) -> DestinationRow {
        let signed = keys
            .and_then(|k| DestinationSecret::open(k, &row.id, &row.sealed).ok())
            .map(|secret| secret.signing_secret.is_some());
        DestinationRow {
            id: row.id,
            kind: row.kind,
            display_url: row.display_url,
            max_per_minute: row.max_per_minute,
            signed,
            version: row.version,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
        }
    }
}

/// The body of a create or replace. Deliberately not `Debug`: it holds the URL and secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// Required to create; when replacing, it must match the path if given.
    id: Option<String>,
    kind: String,
    url: String,
    signing_secret: Option<String>,
    max_per_minute: Option<i64>,
}

/// What is stored: everything checked, the secret part sealed.
struct Checked {
    kind: DestinationKind,
    display_url: String,
    sealed: Vec<u8>,
    max_per_minute: i32,
}

impl Checked {
    fn row<'a>(&'a self, id: &'a str, principal: &'a Principal) -> NewDestination<'a> {
        NewDestination {
            id,
            kind: self.kind.as_str(),
            display_url: &self.display_url,
            sealed: &self.sealed,
            max_per_minute: self.max_per_minute,
            by: &principal.name,
        }
    }
}

fn check_id(id: &str) -> Result<(), Error> {
    let ok = (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "id",
            "a destination id is 1 to 64 characters of a-z, 0-9, '.', '_' and '-'",
        ))
    }
}

/// Validates and seals. No message here may repeat the URL or the secret.
fn check(id: &str, body: Destination, keys: Option<&Keyring>) -> Result<Checked, Error> {
    check_id(id)?;
    let kind = DestinationKind::ALL
        .into_iter()
        .find(|k| k.as_str() == body.kind)
        .ok_or_else(|| Error::invalid("kind", "`kind` is one of webhook, slack, alertmanager"))?;
    if body.url.len() > MAX_URL {
        return Err(Error::invalid(
            "url",
            format!("`url` is at most {MAX_URL} bytes"),
        ));
    }
    if let Some(secret) = &body.signing_secret {
        if secret.len() > MAX_SECRET {
            return Err(Error::invalid(
                "signing_secret",
                format!("`signing_secret` is at most {MAX_SECRET} bytes"),
            ));
        }
        // Only webhook bodies are signed: a secret on another kind would be silently unused.
        if kind != DestinationKind::Webhook {
            return Err(Error::invalid(
                "signing_secret",
                "only webhook destinations are signed",
            ));
        }
    }
    let max_per_minute = body.max_per_minute.unwrap_or(60);
    let max_per_minute = i32::try_from(max_per_minute)
        .ok()
        .filter(|m| (1..=10_000).contains(m))
        .ok_or_else(|| Error::invalid("max_per_minute", "`max_per_minute` is 1 to 10000"))?;
    let secret = DestinationSecret {
        url: body.url,
        signing_secret: body.signing_secret,
    };
    secret.validate().map_err(|e| {
        let field = if e.to_string().contains("signing_secret") {
            "signing_secret"
        } else {
            "url"
        };
        Error::invalid(field, e.to_string())
    })?;
    let keys = keys.ok_or_else(|| {
        Error::Conflict(
            "alert destinations are sealed with the content keyring: set ENCRYPTION_KEY or ENCRYPTION_KEYS"
                .into(),
        )
    })?;
    // The seal error says nothing about the plaintext; it is logged, not shown.
    let sealed = secret
        .seal(keys, id)
        .map_err(|e| Error::Internal(format!("sealing destination `{id}`: {e}")))?;
    Ok(Checked {
        kind,
        display_url: secret.display_url(),
        sealed,
        max_per_minute,
    })
}

async fn record(
    db: impl sqlx::PgExecutor<'_>,
    principal: &Principal,
    ip: Option<std::net::IpAddr>,
    action: &str,
    id: &str,
    details: Value,
) -> Result<(), Error> {
    audit::record(
        db,
        Entry {
            actor: &principal.name,
            action,
            target: Some(id),
            success: true,
            ip,
            details,
        },
    )
    .await
}

#[derive(Serialize, ToSchema)]
pub struct Destinations {
    destinations: Vec<DestinationRow>,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Destinations>, Error> {
    let destinations: Vec<DestinationRow> = store::destinations(&state.pool)
        .await?
        .into_iter()
        .map(|r| DestinationRow::opened(r, state.keys.as_ref()))
        .collect();
    Ok(Json(Destinations { destinations }))
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Body(body): Body<Destination>,
) -> Result<Json<DestinationRow>, Error> {
    let id = body
        .id
        .clone()
        .ok_or_else(|| Error::invalid("id", "`id` is required"))?;
    let checked = check(&id, body, state.keys.as_ref())?;
    let mut tx = state.pool.begin().await?;
    let row = store::insert_destination(&mut *tx, checked.row(&id, &principal)).await?;
    let row = row.ok_or_else(|| Error::Conflict(format!("destination `{id}` already exists")))?;
    let details = json!({ "kind": row.kind, "display_url": row.display_url });
    record(
        &mut *tx,
        &principal,
        ip,
        "alert_destination.create",
        &id,
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(DestinationRow::opened(row, state.keys.as_ref())))
}

/// Replaces kind, URL, secret and rate as a new version; the URL is required again (it is
/// never shown, so it cannot be edited in place).
pub async fn replace(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Body(body): Body<Destination>,
) -> Result<Json<DestinationRow>, Error> {
    if body.id.as_ref().is_some_and(|b| *b != id) {
        return Err(Error::invalid(
            "id",
            "the destination's id must match the path",
        ));
    }
    let checked = check(&id, body, state.keys.as_ref())?;
    let mut tx = state.pool.begin().await?;
    let row = store::update_destination(&mut *tx, checked.row(&id, &principal)).await?;
    let row = row.ok_or(Error::NotFound)?;
    let details =
        json!({ "kind": row.kind, "display_url": row.display_url, "version": row.version });
    record(
        &mut *tx,
        &principal,
        ip,
        "alert_destination.update",
        &id,
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(DestinationRow::opened(row, state.keys.as_ref())))
}

/// Refused while a route sends to it, so no route is left pointing nowhere.
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, Error> {
    let mut tx = state.pool.begin().await?;
    // Locked first: a route being created with it holds a share lock, so this waits for
    // that route and then sees it below.
    let kind = store::lock_destination(&mut *tx, &id).await?;
    let kind = kind.ok_or(Error::NotFound)?;
    let routes = store::routes_using(&mut *tx, &id).await?;
    if !routes.is_empty() {
        let routes: Vec<String> = routes.iter().map(|r| format!("`{r}`")).collect();
        return Err(Error::Conflict(format!(
            "destination `{id}` is used by route{} {}",
            if routes.len() == 1 { "" } else { "s" },
            routes.join(", ")
        )));
    }
    store::delete_destination(&mut *tx, &id).await?;
    let details = json!({ "kind": kind });
    record(
        &mut *tx,
        &principal,
        ip,
        "alert_destination.delete",
        &id,
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Deleted { deleted: id }))
}
