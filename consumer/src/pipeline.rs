//! The consumer's two stages. One reads a batch and evaluates it, split across the cores;
//! the other stores batches in order, one transaction each, then commits their offsets to
//! Kafka. A channel of one batch joins them, so the next batch is read and evaluated while
//! the last is written, and at most three batches are in memory, each of at most
//! `BATCH_SIZE` messages and about `BATCH_MAX_BYTES` (see [`kafka::Limits`]).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use flagstream_rules::RuleSet;
use rdkafka::consumer::{CommitMode, Consumer};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::{self, Evaluated, Message, Storage};
use crate::kafka::{self, KafkaConsumer};
use crate::metrics::Metrics;
use crate::{sink, Error};

/// Longest pause between attempts to store a batch while PostgreSQL is unavailable.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Below this many messages a batch part is not worth a thread of its own.
const MIN_PART: usize = 256;

/// An evaluated batch on its way to the database, with the arrival of its first message.
pub type Ready = (Evaluated, Instant);

/// How many batches were handed to the store stage and are not yet committed or abandoned.
/// A partition revocation waits for none to be left (see [`crate::kafka::Context`]).
#[derive(Debug, Default)]
pub struct InFlight {
    count: Mutex<usize>,
    changed: Condvar,
}

impl InFlight {
    pub fn add(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    pub fn done(&self) {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(1);
        self.changed.notify_all();
    }

    /// The store stage stopped: what is left will never be written by this member.
    pub fn abandon_all(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) = 0;
        self.changed.notify_all();
    }

    /// Blocks until no batch is in flight; false if `timeout` passed first. Called from the
    /// rebalance callback, inside a runtime worker: the worker's other tasks move to another
    /// thread meanwhile, so the store stage keeps its I/O even on a one-worker runtime.
    pub fn wait_until_written(&self, timeout: Duration) -> bool {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| self.wait(timeout))
        } else {
            self.wait(timeout)
        }
    }

    fn wait(&self, timeout: Duration) -> bool {
        let count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        let (count, waited) = self
            .changed
            .wait_timeout_while(count, timeout, |n| *n > 0)
            .unwrap_or_else(PoisonError::into_inner);
        drop(count);
        !waited.timed_out()
    }
}

pub struct Fetch {
    pub consumer: Arc<KafkaConsumer>,
    pub limits: kafka::Limits,
    pub batch_timeout: Duration,
    pub workers: usize,
    pub rule_sets: watch::Receiver<Arc<RuleSet>>,
    pub storage: Arc<Storage>,
    pub metrics: Arc<Metrics>,
}

/// Stage one: reads and evaluates batches until shutdown, or until the store stage stops.
pub async fn fetch_and_evaluate(
    f: Fetch,
    out: mpsc::Sender<Ready>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    while let Some(fetched) =
        kafka::next_batch(&f.consumer, f.limits, f.batch_timeout, &shutdown).await
    {
        f.metrics.batch_size.observe(fetched.messages.len() as f64);
        let started = Instant::now();
        let rules = Arc::clone(&f.rule_sets.borrow());
        let evaluated = evaluate(rules, fetched.messages, &f.storage, f.workers).await?;
        f.metrics
            .eval_seconds
            .observe(started.elapsed().as_secs_f64());
        let in_flight = &f.consumer.context().in_flight;
        in_flight.add();
        if out.send((evaluated, fetched.first_received)).await.is_err() {
            in_flight.done();
            break;
        }
    }
    Ok(())
}

/// Evaluates a batch in up to `workers` parts on blocking threads, joined back in order.
async fn evaluate(
    rules: Arc<RuleSet>,
    mut messages: Vec<Message>,
    storage: &Arc<Storage>,
    workers: usize,
) -> Result<Evaluated, Error> {
    let part = messages.len().div_ceil(workers.max(1)).max(MIN_PART);
    let mut parts = Vec::new();
    while messages.len() > part {
        parts.push(messages.split_off(messages.len() - part));
    }
    parts.push(messages);
    let tasks: Vec<_> = parts
        .into_iter()
        .rev()
        .map(|part| {
            let (rules, storage) = (Arc::clone(&rules), Arc::clone(storage));
            tokio::task::spawn_blocking(move || batch::evaluate(&rules, part, &storage))
        })
        .collect();
    let mut whole: Option<Evaluated> = None;
    for task in tasks {
        let part = task.await.map_err(|e| Error::Worker(e.to_string()))??;
        match &mut whole {
            Some(w) => w.append(part),
            None => whole = Some(part),
        }
    }
    Ok(whole.unwrap_or_default())
}

/// Stage two: stores every batch that arrives, in order, then commits its offsets to
/// Kafka. Ends when stage one does, or at shutdown while the database is unavailable (the
/// batch in hand is then abandoned uncommitted, and replayed by the partitions' next owner).
pub async fn store_all(
    pool: &PgPool,
    consumer: &Arc<KafkaConsumer>,
    group: &str,
    mut incoming: mpsc::Receiver<Ready>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let in_flight = &consumer.context().in_flight;
    let stored = store_in_order(pool, consumer, group, &mut incoming, metrics, shutdown).await;
    in_flight.abandon_all();
    stored
}

async fn store_in_order(
    pool: &PgPool,
    consumer: &Arc<KafkaConsumer>,
    group: &str,
    incoming: &mut mpsc::Receiver<Ready>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    while let Some((evaluated, received)) = incoming.recv().await {
        if !store_with_retry(pool, consumer, group, &evaluated, metrics, shutdown).await {
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
        let committer = Arc::clone(consumer);
        tokio::task::spawn_blocking(move || kafka::commit(&committer, &list, mode))
            .await
            .map_err(|e| Error::Worker(e.to_string()))?;
        consumer.context().in_flight.done();
    }
    Ok(())
}

/// Retries with backoff until the batch is stored; false if shutdown came first. While
/// PostgreSQL is down the assigned partitions are paused, so nothing more is fetched and
/// memory stays bounded.
async fn store_with_retry(
    pool: &PgPool,
    consumer: &KafkaConsumer,
    group: &str,
    batch: &Evaluated,
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
    metrics.shadow_only.inc_by(stored.shadow_only);
    metrics.replayed.inc_by(stored.replayed);
    for (reason, n) in stored.dead_letters_by_reason {
        metrics
            .dead_letters
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc_by(n);
    }
    for (rule, n) in stored.detections_by_rule {
        metrics
            .detections
            .get_or_create(&vec![("rule", rule)])
            .inc_by(n);
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics.last_commit.set(now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_waits_for_batches_in_flight_and_gives_up_at_its_deadline() {
        let in_flight = Arc::new(InFlight::default());
        assert!(
            in_flight.wait_until_written(Duration::ZERO),
            "nothing in flight"
        );

        in_flight.add();
        in_flight.add();
        assert!(!in_flight.wait_until_written(Duration::from_millis(1)));
        let writer = {
            let in_flight = Arc::clone(&in_flight);
            std::thread::spawn(move || {
                in_flight.done();
                in_flight.done();
            })
        };
        assert!(in_flight.wait_until_written(Duration::from_secs(30)));
        writer.join().unwrap();

        in_flight.add();
        in_flight.abandon_all();
        assert!(in_flight.wait_until_written(Duration::ZERO));
    }
}
