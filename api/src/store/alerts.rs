//! Alert routes (`alert_routes`, versioned by a trigger into `alert_route_versions`) and
//! alert destinations (`alert_destinations`, URL and secret sealed).

use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use crate::Error;

/// A route as the API shows it; `definition` is the stored `RouteDefinition`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RouteRow {
    pub id: String,
    pub position: i32,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub updated_by: Option<String>,
    pub definition: Value,
}

pub struct RouteVersion {
    pub seq: i64,
    pub version: i32,
    pub position: Option<i32>,
    /// None: the version records a deletion.
    pub definition: Option<Value>,
    pub changed_at: OffsetDateTime,
    pub changed_by: Option<String>,
}

/// A destination as stored; the API opens `sealed` only to say whether it is signed.
pub struct DestinationRow {
    pub id: String,
    pub kind: String,
    pub display_url: String,
    pub max_per_minute: i32,
    pub version: i32,
    pub updated_at: OffsetDateTime,
    pub updated_by: Option<String>,
    pub sealed: Vec<u8>,
}

/// What a create or replace of a destination stores.
pub struct NewDestination<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub display_url: &'a str,
    pub sealed: &'a [u8],
    pub max_per_minute: i32,
    pub by: &'a str,
}

pub async fn routes(pool: &PgPool) -> Result<Vec<RouteRow>, Error> {
    Ok(sqlx::query_as!(
        RouteRow,
        "SELECT id, position, version, updated_at, updated_by, definition
         FROM alert_routes ORDER BY position, id"
    )
    .fetch_all(pool)
    .await?)
}

pub async fn route(pool: &PgPool, id: &str) -> Result<Option<RouteRow>, Error> {
    Ok(sqlx::query_as!(
        RouteRow,
        "SELECT id, position, version, updated_at, updated_by, definition
         FROM alert_routes WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?)
}

/// Inserts a new route, after the last one without a position; None when the id is taken.
/// Versions continue after a deleted route's history, so they never repeat.
pub async fn insert_route(
    db: impl PgExecutor<'_>,
    id: &str,
    position: Option<i32>,
    definition: &Value,
    by: &str,
) -> Result<Option<RouteRow>, Error> {
    Ok(sqlx::query_as!(
        RouteRow,
        r#"INSERT INTO alert_routes (id, position, definition, version, updated_at, updated_by)
           VALUES ($1,
                   COALESCE($2, (SELECT COALESCE(max(position), 0) + 1 FROM alert_routes)),
                   $3,
                   (SELECT COALESCE(max(version), 0) + 1 FROM alert_route_versions
                    WHERE route_id = $1),
                   now(), $4)
           ON CONFLICT (id) DO NOTHING
           RETURNING id, position, version, updated_at, updated_by, definition"#,
        id,
        position,
        definition,
        by
    )
    .fetch_optional(db)
    .await?)
}

/// Replaces the definition (and the position, when given) as a new version.
pub async fn update_route(
    db: impl PgExecutor<'_>,
    id: &str,
    position: Option<i32>,
    definition: &Value,
    by: &str,
) -> Result<Option<RouteRow>, Error> {
    Ok(sqlx::query_as!(
        RouteRow,
        "UPDATE alert_routes
         SET definition = $2, position = COALESCE($3, position), version = version + 1,
             updated_at = now(), updated_by = $4
         WHERE id = $1
         RETURNING id, position, version, updated_at, updated_by, definition",
        id,
        definition,
        position,
        by
    )
    .fetch_optional(db)
    .await?)
}

/// The deleted route's last version, or None when there was no such route.
pub async fn delete_route(db: impl PgExecutor<'_>, id: &str) -> Result<Option<i32>, Error> {
    Ok(sqlx::query_scalar!(
        "DELETE FROM alert_routes WHERE id = $1 RETURNING version",
        id
    )
    .fetch_optional(db)
    .await?)
}

/// Signs the deletion row the trigger appended. An UPDATE of `updated_by` before the
/// delete would append a spurious version instead.
pub async fn sign_route_deletion(db: impl PgExecutor<'_>, id: &str, by: &str) -> Result<(), Error> {
    sqlx::query!(
        "UPDATE alert_route_versions SET changed_by = $2
         WHERE seq = (SELECT max(seq) FROM alert_route_versions WHERE route_id = $1)
           AND definition IS NULL",
        id,
        by
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn route_versions(pool: &PgPool, id: &str) -> Result<Vec<RouteVersion>, Error> {
    Ok(sqlx::query_as!(
        RouteVersion,
        "SELECT seq, version, position, definition, changed_at, changed_by
         FROM alert_route_versions WHERE route_id = $1 ORDER BY seq DESC",
        id
    )
    .fetch_all(pool)
    .await?)
}

pub async fn route_definition(pool: &PgPool, id: &str) -> Result<Option<Value>, Error> {
    Ok(
        sqlx::query_scalar!("SELECT definition FROM alert_routes WHERE id = $1", id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Which of `ids` exist, locked (shared) until the transaction ends, so a concurrent delete
/// of one waits and then sees the route being saved.
pub async fn lock_destinations(
    db: impl PgExecutor<'_>,
    ids: &[String],
) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM alert_destinations WHERE id = ANY($1) ORDER BY id FOR SHARE",
        ids
    )
    .fetch_all(db)
    .await?)
}

/// The kind of each of `ids` that exists, as (id, kind).
pub async fn destination_kinds(
    pool: &PgPool,
    ids: &[String],
) -> Result<Vec<(String, String)>, Error> {
    let rows = sqlx::query!(
        "SELECT id, kind FROM alert_destinations WHERE id = ANY($1)",
        ids
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.kind)).collect())
}

pub async fn destinations(pool: &PgPool) -> Result<Vec<DestinationRow>, Error> {
    Ok(sqlx::query_as!(
        DestinationRow,
        "SELECT id, kind, display_url, max_per_minute, version, updated_at, updated_by, sealed
         FROM alert_destinations ORDER BY id"
    )
    .fetch_all(pool)
    .await?)
}

/// None when the id is taken.
pub async fn insert_destination(
    db: impl PgExecutor<'_>,
    new: NewDestination<'_>,
) -> Result<Option<DestinationRow>, Error> {
    Ok(sqlx::query_as!(
        DestinationRow,
        "INSERT INTO alert_destinations
             (id, kind, display_url, sealed, max_per_minute, version, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, 1, now(), $6)
         ON CONFLICT (id) DO NOTHING
         RETURNING id, kind, display_url, max_per_minute, version, updated_at, updated_by, sealed",
        new.id,
        new.kind,
        new.display_url,
        new.sealed,
        new.max_per_minute,
        new.by
    )
    .fetch_optional(db)
    .await?)
}

/// None when there is no such destination.
pub async fn update_destination(
    db: impl PgExecutor<'_>,
    new: NewDestination<'_>,
) -> Result<Option<DestinationRow>, Error> {
    Ok(sqlx::query_as!(
        DestinationRow,
        "UPDATE alert_destinations
         SET kind = $2, display_url = $3, sealed = $4, max_per_minute = $5,
             version = version + 1, updated_at = now(), updated_by = $6
         WHERE id = $1
         RETURNING id, kind, display_url, max_per_minute, version, updated_at, updated_by, sealed",
        new.id,
        new.kind,
        new.display_url,
        new.sealed,
        new.max_per_minute,
        new.by
    )
    .fetch_optional(db)
    .await?)
}

/// The destination's kind, locked until the transaction ends.
pub async fn lock_destination(db: impl PgExecutor<'_>, id: &str) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar!(
        "SELECT kind FROM alert_destinations WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(db)
    .await?)
}

/// The routes that send to destination `id`.
pub async fn routes_using(db: impl PgExecutor<'_>, id: &str) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM alert_routes WHERE definition->'destinations' ? $1 ORDER BY id",
        id
    )
    .fetch_all(db)
    .await?)
}

pub async fn delete_destination(db: impl PgExecutor<'_>, id: &str) -> Result<(), Error> {
    sqlx::query!("DELETE FROM alert_destinations WHERE id = $1", id)
        .execute(db)
        .await?;
    Ok(())
}
