//! The Kafka side: joining the group, reading batches, committing what was stored.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::message::Message as _;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::Message;
use crate::config::{Config, Secret};
use crate::metrics::Metrics;
use crate::pipeline::InFlight;
use crate::Error;

pub type KafkaConsumer = StreamConsumer<Context>;

/// How long start-up waits for the brokers to describe the topic.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a revocation waits for the batches being written (a database outage must not
/// hold the group's rebalance hostage).
const REVOKE_WAIT: Duration = Duration::from_secs(10);

/// Longest a rebalance waits for PostgreSQL's offsets before falling back to Kafka's.
const STORED_OFFSETS_TIMEOUT: Duration = Duration::from_secs(5);

/// Assigns partitions at the offsets PostgreSQL holds for them, and feeds the lag gauges.
///
/// Kafka's committed offsets trail PostgreSQL's (they are committed after it), so a new
/// owner starting from Kafka's would re-read what is already stored. Should PostgreSQL be
/// unreachable during a rebalance, Kafka's offsets are used and the batch transaction still
/// skips whatever was stored: the seek saves work, the transaction guarantees exactness.
pub struct Context {
    database_url: Secret,
    group: String,
    metrics: Arc<Metrics>,
    pub in_flight: Arc<InFlight>,
}

impl ClientContext for Context {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1: not consumed here, or librdkafka's internal partition.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics.set_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let wanted: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                let stored = self.stored_offsets(wanted);
                for (topic, partition, offset) in &stored {
                    let _ = tpl.set_partition_offset(topic, *partition, Offset::Offset(*offset));
                }
                tracing::info!(
                    partitions = tpl.count(),
                    from_postgres = stored.len(),
                    "partitions assigned"
                );
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                for e in tpl.elements() {
                    self.metrics.clear_lag(e.topic(), e.partition());
                }
                tracing::info!(partitions = tpl.count(), "partitions revoked");
                // The partitions leave with their batches written, so their next owner
                // starts where this member stopped instead of re-reading and skipping.
                if !self.in_flight.wait_until_written(REVOKE_WAIT) {
                    tracing::warn!(
                        "batches were still being written when partitions were revoked; \
                         the offset check in their transaction keeps them exact"
                    );
                }
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance failed");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            self.metrics.error("kafka");
            tracing::warn!(error = %e, "applying the new assignment failed");
        }
        if let Ok(owned) = consumer.assignment() {
            self.metrics.assigned_partitions.set(owned.count() as i64);
        }
    }
}

impl Context {
    /// Reads the stored offsets on a thread of its own, because rebalance callbacks run
    /// inside the consumer's poll, where no async work can be awaited.
    fn stored_offsets(&self, partitions: Vec<(String, i32)>) -> Vec<(String, i32, i64)> {
        let (url, group) = (self.database_url.clone(), self.group.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let result = match runtime {
                Ok(rt) => rt.block_on(read_offsets(url.expose(), &group, &partitions)),
                Err(e) => Err(Error::Io(e)),
            };
            let _ = tx.send(result);
        });
        match rx.recv_timeout(STORED_OFFSETS_TIMEOUT) {
            Ok(Ok(stored)) => stored,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading stored offsets failed; starting from Kafka's");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!("reading stored offsets timed out; starting from Kafka's");
                Vec::new()
            }
        }
    }
}

async fn read_offsets(
    url: &str,
    group: &str,
    partitions: &[(String, i32)],
) -> Result<Vec<(String, i32, i64)>, Error> {
    let mut conn = PgConnection::connect(url).await?;
    let topics: Vec<&str> = partitions.iter().map(|(t, _)| t.as_str()).collect();
    let numbers: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
    let rows = sqlx::query!(
        "SELECT o.topic, o.partition, o.next_offset FROM consumer_offsets o
         JOIN UNNEST($2::text[], $3::int[]) AS a(t, p) ON o.topic = a.t AND o.partition = a.p
         WHERE o.group_id = $1",
        group,
        &topics as &[&str],
        &numbers
    )
    .fetch_all(&mut conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.topic, r.partition, r.next_offset))
        .collect())
}

pub fn connect(config: &Config, metrics: Arc<Metrics>) -> Result<Arc<KafkaConsumer>, Error> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.kafka_bootstrap_servers)
        .set("group.id", &config.kafka_group_id)
        .set("auto.offset.reset", config.kafka_auto_offset_reset.as_str())
        // Offsets are committed by hand, and only for messages whose rows are committed in
        // PostgreSQL; auto-commit would acknowledge messages that were never stored.
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        // librdkafka waits this long before fetching again once its prefetch queue was full
        // (1 s by default), which stalls a consumer that keeps up with the broker only just.
        .set("fetch.queue.backoff.ms", "20")
        // Bounds the prefetched data, all partitions together (64 MB by default).
        .set("queued.max.messages.kbytes", "16384")
        // Feeds the per-partition lag gauges.
        .set("statistics.interval.ms", "5000");
    for option in &config.kafka_options {
        client.set(&option.key, &option.value);
    }
    let context = Context {
        database_url: config.database_url.clone(),
        group: config.kafka_group_id.clone(),
        metrics,
        in_flight: Arc::default(),
    };
    let consumer: KafkaConsumer = client.create_with_context(context)?;
    Ok(Arc::new(consumer))
}

/// Fails fast, naming the problem, when the brokers cannot be reached or the topic is
/// missing, instead of consuming nothing forever.
pub async fn ensure_topic(consumer: &Arc<KafkaConsumer>, topic: &str) -> Result<(), Error> {
    let client = Arc::clone(consumer);
    let name = topic.to_owned();
    let metadata =
        tokio::task::spawn_blocking(move || client.fetch_metadata(Some(&name), METADATA_TIMEOUT))
            .await
            .map_err(|e| Error::Worker(e.to_string()))??;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
        _ => Err(Error::MissingTopic(topic.to_owned())),
    }
}

/// Messages read together, and when the first of them arrived.
pub struct Fetched {
    pub messages: Vec<Message>,
    pub first_received: Instant,
}

/// How much one batch may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most messages.
    pub messages: usize,
    /// Most payload bytes: the batch closes once it holds this many (so it may exceed them by
    /// one message of at most `event_bytes`).
    pub bytes: usize,
    /// Largest value evaluated; of a larger one only the first `keep` bytes are copied, for
    /// its dead letter.
    pub event_bytes: usize,
    pub keep: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            messages: config.batch_size.max(1),
            bytes: config.batch_max_bytes.max(1),
            event_bytes: config.max_event_bytes,
            keep: config.dead_letter_max_bytes,
        }
    }
}

/// Waits for the first message (or shutdown, which yields `None`), then gathers more until
/// the batch is full or `timeout` has passed since the first one arrived. Transport errors
/// are logged and retried by librdkafka; they never end the stream.
pub async fn next_batch(
    consumer: &KafkaConsumer,
    limits: Limits,
    timeout: Duration,
    shutdown: &CancellationToken,
) -> Option<Fetched> {
    let mut topics = Topics::default();
    let first = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return None,
            received = consumer.recv() => match received {
                Ok(m) => break topics.detach(&m, limits),
                Err(e) => tracing::warn!(error = %e, "kafka receive failed"),
            },
        }
    };
    let first_received = Instant::now();
    let mut bytes = first.held_bytes();
    let mut messages = vec![first];
    // One timer for the whole batch, not one per message.
    let deadline = tokio::time::sleep_until(first_received + timeout);
    tokio::pin!(deadline);
    while messages.len() < limits.messages && bytes < limits.bytes {
        tokio::select! {
            _ = &mut deadline => break,
            received = consumer.recv() => match received {
                Ok(m) => {
                    let message = topics.detach(&m, limits);
                    bytes += message.held_bytes();
                    messages.push(message);
                }
                Err(e) => tracing::warn!(error = %e, "kafka receive failed"),
            },
        }
    }
    Some(Fetched {
        messages,
        first_received,
    })
}

/// Hands out one shared name per topic, so a message costs no string allocation for it.
#[derive(Default)]
struct Topics(Vec<Arc<str>>);

impl Topics {
    fn detach(&mut self, m: &rdkafka::message::BorrowedMessage<'_>, limits: Limits) -> Message {
        let name = m.topic();
        let topic = match self.0.iter().find(|t| &***t == name) {
            Some(t) => Arc::clone(t),
            None => {
                let t: Arc<str> = name.into();
                self.0.push(Arc::clone(&t));
                t
            }
        };
        let (payload, oversized) = match m.payload() {
            Some(p) if p.len() > limits.event_bytes => {
                (Some(p[..limits.keep.min(p.len())].to_vec()), Some(p.len()))
            }
            p => (p.map(<[u8]>::to_vec), None),
        };
        Message {
            topic,
            partition: m.partition(),
            offset: m.offset(),
            payload,
            oversized,
        }
    }
}

/// A partition list with the given next offsets.
pub fn offset_list<'a>(
    offsets: impl IntoIterator<Item = (&'a str, i32, i64)>,
) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        // Adding a fresh (topic, partition) pair to a new list cannot fail.
        let _ = list.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    list
}

/// Commits offsets without waiting; a lost commit only means a replay, which stores nothing
/// twice.
pub fn commit(consumer: &KafkaConsumer, offsets: &TopicPartitionList, mode: CommitMode) {
    if offsets.count() == 0 {
        return;
    }
    if let Err(e) = consumer.commit(offsets, mode) {
        tracing::warn!(error = %e, "kafka offset commit failed; the batch will be replayed");
    }
}
