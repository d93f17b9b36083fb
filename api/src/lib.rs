//! Flagstream's REST API for the security team.

mod auth;
pub mod config;
mod error;
mod routes;
pub mod state;
pub mod telemetry;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

pub use auth::TokenDigest;
pub use config::Config;
pub use error::Error;
pub use routes::router;
use state::AppState;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Builds the state from config: checks the token, connects (lazily, so the API can start
/// and report "not ready" while the database is down) and migrates when asked.
pub async fn build_state(config: &Config) -> Result<AppState, Error> {
    let token = TokenDigest::new(config.api_token.expose())?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(config.database_url.expose())?;
    if config.migrate_on_start {
        MIGRATOR.run(&pool).await?;
    }
    Ok(AppState { pool, token })
}

/// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let state = build_state(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}
