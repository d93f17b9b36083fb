//! The schema both binaries share: the SQL files beside this crate, embedded at build time,
//! and the check a binary runs when it must not migrate by itself (`MIGRATE_ON_START=false`,
//! the migrations then being a deployment step of their own).
//!
//! sqlx only reads `<version>_<name>.sql` files from this folder, so the crate's own files
//! live beside the migrations without becoming one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::PgPool;
use thiserror::Error;

// The macro refuses "." (a path relative to this file); "../migrations" is this folder.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

const HINT: &str = "run `flagstream-api migrate` (or `flagstream-consumer migrate`), \
                    or start with MIGRATE_ON_START=true";

#[derive(Debug, Error)]
pub enum Error {
    #[error("the database schema is not migrated: {applied} of {expected} migrations applied, next is {next}; {HINT}")]
    Behind {
        applied: usize,
        expected: usize,
        next: i64,
    },
    #[error("the database schema is newer than this build: migration {0} is unknown to it; upgrade Flagstream to the release that migrated the database")]
    Ahead(i64),
    #[error(
        "migration {0} failed part-way and must be repaired by hand before Flagstream can start"
    )]
    Failed(i64),
    #[error("migration {0} was changed after it was applied (checksum differs); the database and this build disagree")]
    Changed(i64),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// What the database holds compared with what this build expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub applied: usize,
    pub expected: usize,
}

/// Applies every pending migration (serialized across instances by sqlx's advisory lock)
/// and returns how many were applied.
pub async fn migrate(pool: &PgPool) -> Result<usize, Error> {
    let before = applied(pool).await?.len();
    MIGRATOR.run(pool).await?;
    Ok(applied(pool).await?.len().saturating_sub(before))
}

/// Checks that the schema is exactly what this build expects: every migration applied,
/// successfully and unchanged, and none this build does not know.
pub async fn check(pool: &PgPool) -> Result<Status, Error> {
    let applied = applied(pool).await?;
    for (version, (success, checksum)) in &applied {
        match MIGRATOR.iter().find(|m| m.version == *version) {
            None => return Err(Error::Ahead(*version)),
            Some(_) if !success => return Err(Error::Failed(*version)),
            Some(m) if m.checksum.as_ref() != checksum.as_slice() => {
                return Err(Error::Changed(*version))
            }
            Some(_) => {}
        }
    }
    let expected = MIGRATOR.iter().count();
    if let Some(next) = MIGRATOR.iter().find(|m| !applied.contains_key(&m.version)) {
        return Err(Error::Behind {
            applied: applied.len(),
            expected,
            next: next.version,
        });
    }
    Ok(Status {
        applied: applied.len(),
        expected,
    })
}

/// Polls [`check`] until the schema is current or `wait` has passed: an init container's
/// way of waiting for the migration job. Schema errors other than "behind" (a newer or
/// broken schema) and the last database error are returned at the deadline.
pub async fn wait_until_current(pool: &PgPool, wait: Duration) -> Result<Status, Error> {
    let deadline = Instant::now() + wait;
    loop {
        match check(pool).await {
            Ok(status) => return Ok(status),
            Err(e @ (Error::Ahead(_) | Error::Failed(_) | Error::Changed(_))) => return Err(e),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

/// The `migrate` subcommand of both binaries: applies what is pending, or, given `check`,
/// applies nothing and waits that long for the schema to be current. Returns the line to
/// print.
pub async fn command(pool: &PgPool, check: Option<Duration>) -> Result<String, Error> {
    if let Some(wait) = check {
        let status = wait_until_current(pool, wait).await?;
        return Ok(format!("schema is current ({} migrations)", status.applied));
    }
    let applied = migrate(pool).await?;
    let status = self::check(pool).await?;
    Ok(format!(
        "applied {applied} migration(s); schema is current ({} migrations)",
        status.applied
    ))
}

/// Applied versions with their success flag and checksum; none when the migrations table
/// does not exist yet (an empty database).
async fn applied(pool: &PgPool) -> Result<BTreeMap<i64, (bool, Vec<u8>)>, Error> {
    let rows = sqlx::query_as::<_, (i64, bool, Vec<u8>)>(
        "SELECT version, success, checksum FROM _sqlx_migrations",
    )
    .fetch_all(pool)
    .await;
    match rows {
        Ok(rows) => Ok(rows.into_iter().map(|(v, s, c)| (v, (s, c))).collect()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
            Ok(BTreeMap::new())
        }
        Err(e) => Err(e.into()),
    }
}
