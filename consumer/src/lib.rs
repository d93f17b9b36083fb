//! Flagstream's consumer: Kafka → rules → PostgreSQL.
//!
//! The order of operations is the durability contract: a batch is evaluated, its rows are
//! committed in one PostgreSQL transaction, and only then are its Kafka offsets committed. A
//! crash in between replays the batch, and the rows' unique Kafka positions make the replay
//! store nothing twice.

pub mod batch;
pub mod config;
mod error;
pub mod kafka;
pub mod scan;
pub mod sink;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use flagstream_rules::{Pack, RuleSet};
use rdkafka::consumer::{CommitMode, Consumer};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Longest pause between attempts to store a batch while PostgreSQL is unavailable.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

pub async fn connect_database(config: &Config) -> Result<PgPool, Error> {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect(config.database_url.expose())
        .await?;
    if config.migrate_on_start {
        MIGRATOR.run(&pool).await?;
    }
    Ok(pool)
}

/// Runs until `shutdown` is cancelled, then finishes and commits the batch in hand.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let pool = connect_database(&config).await?;
    let rules = Arc::new(RuleSet::build(Pack::builtin(&config.rules_pack)?.rules)?);
    let consumer = kafka::connect(&config)?;
    kafka::ensure_topic(&consumer, &config.kafka_topic).await?;
    consumer.subscribe(&[&config.kafka_topic])?;
    tracing::info!(
        topic = %config.kafka_topic,
        group = %config.kafka_group_id,
        rules = rules.rules().len(),
        "consuming"
    );

    loop {
        let messages = kafka::next_batch(
            &consumer,
            config.batch_size,
            config.batch_timeout(),
            &shutdown,
        )
        .await;
        if messages.is_empty() {
            break;
        }
        let offsets = kafka::next_offsets(&messages);
        let (rules, cap) = (Arc::clone(&rules), config.dead_letter_max_bytes);
        let evaluated = tokio::task::spawn_blocking(move || batch::evaluate(&rules, messages, cap))
            .await
            .map_err(|e| Error::Worker(e.to_string()))?;
        if !store_with_retry(&pool, &evaluated, &shutdown).await {
            // Shut down while the database was unavailable: the batch is abandoned uncommitted
            // and will be replayed by whoever owns the partitions next.
            break;
        }
        let mode = if shutdown.is_cancelled() {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        let consumer = Arc::clone(&consumer);
        tokio::task::spawn_blocking(move || kafka::commit(&consumer, &offsets, mode))
            .await
            .map_err(|e| Error::Worker(e.to_string()))?;
    }
    consumer.unsubscribe();
    tracing::info!("consumer stopped");
    Ok(())
}

/// Retries with backoff until the batch is stored; false if shutdown came first.
async fn store_with_retry(
    pool: &PgPool,
    batch: &batch::Evaluated,
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = Duration::from_millis(100);
    loop {
        match sink::store_batch(pool, batch).await {
            Ok(stored) => {
                tracing::debug!(events = batch.events, ?stored, "batch stored");
                return true;
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "storing batch failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}
