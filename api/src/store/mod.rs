//! Every SQL statement the API runs, one function per statement, grouped by resource and
//! checked against the schema at compile time (`sqlx::query!`; the offline data is in
//! `.sqlx/`). The one exception is the flag search, whose filter is built at run time in
//! `routes/filter.rs`.

pub mod alerts;
pub mod audit;
pub mod backtests;
pub mod deliveries;
pub mod flags;
pub mod rules;
pub mod stats;
pub mod users;

use std::time::Duration;

use sqlx::PgExecutor;

use crate::Error;

/// Bounds the statements of the current transaction (`SET LOCAL`, which takes no bind
/// parameter; `set_config` does).
pub async fn set_statement_timeout(
    db: impl PgExecutor<'_>,
    timeout: Duration,
) -> Result<(), Error> {
    let millis = timeout.as_millis().to_string();
    sqlx::query!("SELECT set_config('statement_timeout', $1, true)", millis)
        .fetch_one(db)
        .await?;
    Ok(())
}
