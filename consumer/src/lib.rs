//! Flagstream's consumer: Kafka → rules → PostgreSQL, effectively once.
//!
//! Each batch is evaluated off the poll loop, across the cores, while the previous one is
//! being written (see [`pipeline`]); its rows and the next offset of every partition in it
//! are committed in one PostgreSQL transaction (see [`sink`]). Kafka offsets
//! are committed afterwards, for lag tools only: partitions are assigned at the offsets
//! PostgreSQL holds (see [`kafka::Context`]), and the transaction skips anything already
//! stored, so a replay after any crash or rebalance writes nothing twice.

pub mod alerts;
pub mod backtest;
pub mod batch;
pub mod config;
mod error;
pub mod kafka;
pub mod metrics;
pub mod pipeline;
pub mod rules;
pub mod scan;
pub mod sink;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

use crate::batch::Storage;
use crate::config::{Secret, StoreContent};
use crate::metrics::Metrics;
use flagstream_rules::content::Keyring;

pub use flagstream_migrations::MIGRATOR;

/// Connects, then migrates when asked; otherwise refuses a schema this build does not match
/// (unmigrated, newer, or altered), before consuming anything.
pub async fn connect_database(config: &Config) -> Result<PgPool, Error> {
    let pool = PgPoolOptions::new()
        // Batches, the rules listener and the alert dispatcher.
        .max_connections(6)
        .acquire_timeout(Duration::from_secs(10))
        .connect(config.database_url.expose())
        .await?;
    if config.migrate_on_start {
        flagstream_migrations::migrate(&pool).await?;
    } else {
        flagstream_migrations::check(&pool).await?;
    }
    Ok(pool)
}

/// `flagstream-consumer migrate`: the same one-shot step as `flagstream-api migrate`, so a
/// deployment can run it from either binary.
pub async fn migrate(args: &config::MigrateArgs) -> Result<String, Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy(args.database_url.expose())?;
    let wait = args.check.then(|| Duration::from_secs(args.wait_secs));
    Ok(flagstream_migrations::command(&pool, wait).await?)
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
    let metrics_addr = flagstream_service::metrics_server::serve(
        config.metrics_addr,
        {
            let metrics = Arc::clone(&metrics);
            move || metrics.render()
        },
        shutdown.clone(),
    )
    .await?;
    let stop_alerting = shutdown.child_token();
    let alerting = config.alerts_enabled.then(|| {
        tokio::spawn(alerts::run(
            pool.clone(),
            storage.keys.clone().map(Arc::new),
            alerts::Settings::from_config(&config),
            Arc::clone(&metrics),
            stop_alerting.clone(),
        ))
    });

    let stop_backtests = shutdown.child_token();
    let backtests: Vec<_> = (0..config.backtest_workers)
        .map(|i| {
            tokio::spawn(backtest::run(
                pool.clone(),
                config.clone(),
                backtest::Settings::from_config(&config),
                backtest::worker_name(i),
                stop_backtests.clone(),
            ))
        })
        .collect();

    let consumer = kafka::connect(&config, Arc::clone(&metrics))?;
    kafka::ensure_topic(&consumer, &config.kafka_topic).await?;
    consumer.subscribe(&[&config.kafka_topic])?;
    tracing::info!(topic = %config.kafka_topic, group = %config.kafka_group_id, %metrics_addr, "consuming");
    if let Some(ready) = ready {
        let _ = ready.send(metrics_addr);
    }

    let (to_store, incoming) = mpsc::channel(1);
    let fetch = pipeline::Fetch {
        consumer: Arc::clone(&consumer),
        limits: kafka::Limits::from_config(&config),
        batch_timeout: config.batch_timeout(),
        workers: config.eval_workers(),
        rule_sets,
        storage,
        metrics: Arc::clone(&metrics),
    };
    // Whatever ends the store stage (shutdown, or an error) ends the fetch stage too.
    let stop_fetching = shutdown.child_token();
    let fetching = tokio::spawn(pipeline::fetch_and_evaluate(
        fetch,
        to_store,
        stop_fetching.clone(),
    ));
    let stored = pipeline::store_all(
        &pool,
        &consumer,
        &config.kafka_group_id,
        incoming,
        &metrics,
        &shutdown,
    )
    .await;
    stop_fetching.cancel();
    let fetched = fetching.await.map_err(|e| Error::Worker(e.to_string()))?;
    consumer.unsubscribe();
    if let Some(alerting) = alerting {
        // Stops at the cancel (a send in flight ends with its timeout); an unsent delivery
        // stays in the database for the next dispatcher.
        stop_alerting.cancel();
        let _ = alerting.await;
    }
    // A job in hand is checkpointed and released for the next worker.
    stop_backtests.cancel();
    for worker in backtests {
        let _ = worker.await;
    }
    stored?;
    fetched?;
    tracing::info!("consumer stopped");
    Ok(())
}
