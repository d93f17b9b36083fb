//! Flagstream's consumer: Kafka → rules → PostgreSQL, effectively once.
//!
//! Each batch is evaluated off the poll loop, then its rows and the next offset of every
//! partition in it are committed in one PostgreSQL transaction (see [`sink`]). Kafka offsets
//! are committed afterwards, for lag tools only: partitions are assigned at the offsets
//! PostgreSQL holds (see [`kafka::Context`]), and the transaction skips anything already
//! stored, so a replay after any crash or rebalance writes nothing twice.

pub mod batch;
pub mod config;
mod error;
pub mod kafka;
pub mod metrics;
pub mod rules;
pub mod scan;
pub mod sink;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rdkafka::consumer::{CommitMode, Consumer};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

use crate::batch::Storage;
use crate::config::{Secret, StoreContent};
use crate::kafka::KafkaConsumer;
use crate::metrics::Metrics;
use flagstream_rules::content::Keyring;

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

/// Checks the settings that must never be silently wrong, before touching any service.
pub fn storage(config: &Config) -> Result<Storage, Error> {
    let keys = Keyring::from_config(
        config.encryption_key.as_ref().map(Secret::expose),
        config.encryption_keys.as_ref().map(Secret::expose),
    )?;
    if config.store_content == StoreContent::Encrypted && keys.is_none() {
        return Err(Error::Config(
            "STORE_CONTENT=encrypted (the default) needs ENCRYPTION_KEY or ENCRYPTION_KEYS; \
             set one, or choose STORE_CONTENT=redacted or none"
                .into(),
        ));
    }
    Ok(Storage {
        mode: config.store_content,
        keys,
        dead_letter_max_bytes: config.dead_letter_max_bytes,
    })
}

/// Runs until `shutdown` is cancelled, then finishes and commits the batch in hand.
/// `ready` receives the metrics address once the consumer has subscribed.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    ready: Option<oneshot::Sender<SocketAddr>>,
) -> Result<(), Error> {
    let storage = Arc::new(storage(&config)?);
    let metrics = Arc::new(Metrics::new());
    let pool = connect_database(&config).await?;
    rules::seed(&pool, &config.rules_pack).await?;
    let listener = rules::listen(&pool).await;
    let (publish, rule_sets) =
        watch::channel(Arc::new(flagstream_rules::RuleSet::build(Vec::new())?));
    rules::reload(&pool, config.flag_threshold, &metrics, &publish).await?;
    tokio::spawn(rules::watch(
        pool.clone(),
        listener,
        config.flag_threshold,
        Duration::from_secs(config.rules_poll_secs.max(1)),
        Arc::clone(&metrics),
        publish,
        shutdown.clone(),
    ));
    let metrics_addr =
        metrics::serve(config.metrics_addr, Arc::clone(&metrics), shutdown.clone()).await?;

    let consumer = kafka::connect(&config, Arc::clone(&metrics))?;
    kafka::ensure_topic(&consumer, &config.kafka_topic).await?;
    consumer.subscribe(&[&config.kafka_topic])?;
    tracing::info!(topic = %config.kafka_topic, group = %config.kafka_group_id, %metrics_addr, "consuming");
    if let Some(ready) = ready {
        let _ = ready.send(metrics_addr);
    }

    loop {
        let messages = kafka::next_batch(
            &consumer,
            config.batch_size,
            config.batch_timeout(),
            &shutdown,
        )
        .await;
        let received = Instant::now();
        if messages.is_empty() {
            break;
        }
        metrics.batch_size.observe(messages.len() as f64);
        let rules = Arc::clone(&rule_sets.borrow());
        let storage = Arc::clone(&storage);
        let evaluated =
            tokio::task::spawn_blocking(move || batch::evaluate(&rules, messages, &storage))
                .await
                .map_err(|e| Error::Worker(e.to_string()))??;
        metrics
            .eval_seconds
            .observe(received.elapsed().as_secs_f64());
        if !store_with_retry(
            &pool,
            &consumer,
            &config.kafka_group_id,
            &evaluated,
            &metrics,
            &shutdown,
        )
        .await
        {
            // Shut down while the database was unavailable: the batch is abandoned uncommitted
            // and will be replayed by whoever owns the partitions next.
            break;
        }
        metrics
            .batch_seconds
            .observe(received.elapsed().as_secs_f64());
        let offsets = sink::next_offsets(&evaluated);
        let list = kafka::offset_list(offsets.iter().map(|((t, p), o)| (*t, *p, *o)));
        let mode = if shutdown.is_cancelled() {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        let consumer = Arc::clone(&consumer);
        tokio::task::spawn_blocking(move || kafka::commit(&consumer, &list, mode))
            .await
            .map_err(|e| Error::Worker(e.to_string()))?;
    }
    consumer.unsubscribe();
    tracing::info!("consumer stopped");
    Ok(())
}

/// Retries with backoff until the batch is stored; false if shutdown came first. While
/// PostgreSQL is down the assigned partitions are paused, so nothing more is fetched and
/// memory stays bounded by one batch.
async fn store_with_retry(
    pool: &PgPool,
    consumer: &KafkaConsumer,
    group: &str,
    batch: &batch::Evaluated,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = Duration::from_millis(100);
    let mut paused = None;
    let stored = loop {
        let started = Instant::now();
        match sink::store_batch(pool, group, batch).await {
            Ok(stored) => {
                metrics
                    .db_write_seconds
                    .observe(started.elapsed().as_secs_f64());
                break Some(stored);
            }
            Err(e) => {
                metrics.error("database");
                tracing::warn!(error = %e, retry_in = ?delay, "storing batch failed");
            }
        }
        if paused.is_none() {
            if let Ok(assignment) = consumer.assignment() {
                if consumer.pause(&assignment).is_ok() {
                    paused = Some(assignment);
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break None,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    };
    if let Some(assignment) = paused {
        if let Err(e) = consumer.resume(&assignment) {
            tracing::warn!(error = %e, "resuming partitions failed");
        }
    }
    let Some(stored) = stored else { return false };
    tracing::debug!(?stored, "batch stored");
    metrics.events.inc_by(stored.events);
    metrics.flagged.inc_by(stored.flags);
    metrics.replayed.inc_by(stored.replayed);
    for d in &batch.dead_letters {
        metrics
            .dead_letters
            .get_or_create(&vec![("reason", d.code.to_owned())])
            .inc();
    }
    for f in &batch.flags {
        for d in &f.verdict.detections {
            metrics
                .detections
                .get_or_create(&vec![("rule", d.rule_id.clone())])
                .inc();
        }
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics.last_commit.set(now);
    true
}
