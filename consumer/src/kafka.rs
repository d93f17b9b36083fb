//! The Kafka side: joining the group, reading batches, committing what was stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::Message;
use crate::config::Config;
use crate::Error;

/// How long start-up waits for the brokers to describe the topic.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

pub fn connect(config: &Config) -> Result<Arc<StreamConsumer>, Error> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.kafka_bootstrap_servers)
        .set("group.id", &config.kafka_group_id)
        .set("auto.offset.reset", config.kafka_auto_offset_reset.as_str())
        // Offsets are committed by hand, and only for messages whose rows are committed in
        // PostgreSQL; auto-commit would acknowledge messages that were never stored.
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for option in &config.kafka_options {
        client.set(&option.key, &option.value);
    }
    let consumer: StreamConsumer = client.create()?;
    Ok(Arc::new(consumer))
}

/// Fails fast, naming the problem, when the brokers cannot be reached or the topic is
/// missing, instead of consuming nothing forever.
pub async fn ensure_topic(consumer: &Arc<StreamConsumer>, topic: &str) -> Result<(), Error> {
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

/// Waits for the first message (or shutdown), then gathers more until the batch is full or
/// `timeout` has passed since the first one arrived. Transport errors are logged and
/// retried by librdkafka; they never end the stream.
pub async fn next_batch(
    consumer: &StreamConsumer,
    max: usize,
    timeout: Duration,
    shutdown: &CancellationToken,
) -> Vec<Message> {
    let mut batch = Vec::new();
    let first = loop {
        tokio::select! {
            _ = shutdown.cancelled() => return batch,
            received = consumer.recv() => match received {
                Ok(m) => break detach(&m),
                Err(e) => tracing::warn!(error = %e, "kafka receive failed"),
            },
        }
    };
    batch.push(first);
    let deadline = Instant::now() + timeout;
    while batch.len() < max {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            received = consumer.recv() => match received {
                Ok(m) => batch.push(detach(&m)),
                Err(e) => tracing::warn!(error = %e, "kafka receive failed"),
            },
        }
    }
    batch
}

fn detach(m: &rdkafka::message::BorrowedMessage<'_>) -> Message {
    Message {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        payload: m.payload().map(<[u8]>::to_vec),
    }
}

/// The next offset to read for each partition in the batch.
pub fn next_offsets(batch: &[Message]) -> TopicPartitionList {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for m in batch {
        let entry = next.entry((&m.topic, m.partition)).or_insert(m.offset + 1);
        *entry = (*entry).max(m.offset + 1);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        // Adding a fresh (topic, partition) pair to a new list cannot fail.
        let _ = list.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    list
}

/// Commits offsets without waiting; a lost commit only means a replay, which stores nothing
/// twice.
pub fn commit(consumer: &StreamConsumer, offsets: &TopicPartitionList, mode: CommitMode) {
    if offsets.count() == 0 {
        return;
    }
    if let Err(e) = consumer.commit(offsets, mode) {
        tracing::warn!(error = %e, "kafka offset commit failed; the batch will be replayed");
    }
}
