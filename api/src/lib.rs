//! Flagstream's REST API for the security team.

pub mod auth;
pub mod config;
mod cpu;
mod error;
mod extract;
pub mod healthcheck;
mod input;
pub mod metrics;
mod ratelimit;
mod routes;
pub mod state;
mod store;
mod trace;
pub mod users;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use config::{Cli, Command, Config};
pub use error::Error;
pub use routes::{endpoints, matrix, openapi_document, router, Endpoint, Hardening};
use state::AppState;

pub use flagstream_migrations::MIGRATOR;

/// Not part of the API: the flag search's query-string handling (filters, cursor, times),
/// exposed for the fuzz target in `fuzz/`. True when the query is accepted.
#[doc(hidden)]
pub fn fuzz_flag_query(query: &str) -> bool {
    routes::filter::accepts(query)
}

/// Connects lazily, so the API can start and report "not ready" while the database is down.
/// Migrates when asked; otherwise refuses a reachable database whose schema this build does
/// not match (see [`flagstream_migrations::check`]).
pub async fn connect(config: &Config) -> Result<PgPool, Error> {
    let pool = pool(config)?;
    if config.migrate_on_start {
        let migrations = migration_pool(config)?;
        flagstream_migrations::migrate(&migrations).await?;
        migrations.close().await;
    } else {
        match flagstream_migrations::check(&pool).await {
            Ok(_) => {}
            Err(flagstream_migrations::Error::Database(e)) => {
                tracing::warn!(error = %e, "database unreachable at start-up; /ready reports it");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(pool)
}

/// Migrations may run long: their connection has no statement time limit.
fn migration_pool(config: &Config) -> Result<PgPool, Error> {
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(connect_options(config)?))
}

fn connect_options(config: &Config) -> Result<PgConnectOptions, Error> {
    let url = config
        .database_url
        .as_ref()
        .ok_or_else(|| Error::Config("DATABASE_URL is required".into()))?;
    Ok(url.expose().parse::<PgConnectOptions>()?)
}

/// The pool alone, for commands that decide themselves what to do with the schema. No
/// statement outlives its request: each has at most REQUEST_TIMEOUT_SECS (heavy reads set
/// a shorter limit of their own).
pub fn pool(config: &Config) -> Result<PgPool, Error> {
    let limit = format!("{}s", config.request_timeout_secs.max(1));
    let options = connect_options(config)?.options([("statement_timeout", limit.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    Ok(pool)
}

/// `flagstream-api migrate`: applies the pending migrations, or with `--check` only waits
/// for the schema to be current. Returns what to tell the operator.
pub async fn migrate(config: &Config, args: &config::MigrateArgs) -> Result<String, Error> {
    let pool = migration_pool(config)?;
    let wait = args.check.then(|| Duration::from_secs(args.wait_secs));
    Ok(flagstream_migrations::command(&pool, wait).await?)
}

pub fn hardening(config: &Config) -> Hardening {
    Hardening {
        cors_origins: config.cors_origins.clone(),
        max_body_bytes: config.max_body_bytes,
    }
}

/// Serves the API and its metrics until `shutdown` is cancelled, then lets in-flight
/// requests finish.
pub async fn serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pool = connect(&config).await?;
    let state = AppState::new(pool.clone(), &config)?;
    if let (Some(user), Some(password)) = (
        &config.bootstrap_admin_username,
        &config.bootstrap_admin_password,
    ) {
        if users::bootstrap(&pool, user, password.expose().to_owned())
            .await
            .context("failed to create the bootstrap admin")?
        {
            tracing::info!(username = %user, "created the bootstrap admin");
        }
    }
    let metrics = state.metrics.clone();
    let metrics_addr = flagstream_service::metrics_server::serve(
        config.metrics_addr,
        move || metrics.render(),
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("failed to bind {}", config.metrics_addr))?;
    let app = router(state, &hardening(&config))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, metrics = %metrics_addr, "listening");
    let api = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned());
    api.await?;
    Ok(())
}
