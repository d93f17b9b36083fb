//! Reading a past range of the topic for a backtest: its own Kafka client that is assigned
//! partitions (never subscribed: it joins no group, takes no partition from the live
//! consumers and commits nothing) at exact offsets found by timestamp (`offsets_for_times`)
//! or counted back from the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::Error;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// What a job asks for.
#[derive(Debug, Clone, Copy)]
pub enum Range {
    /// Kafka timestamps in [from, to), in milliseconds.
    Time { from: i64, to: i64 },
    /// The newest `n` messages of the topic, taken from each partition in proportion to
    /// what it holds.
    Last(i64),
}

/// The offsets a job reads, fixed when it first runs so a resumed job reads the same range.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Plan {
    pub partitions: Vec<Span>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Span {
    pub partition: i32,
    /// First offset read, and the offset reading stops before at the latest (a time range
    /// also stops at the first message at or after its end, as Kafka's own end offset
    /// would).
    pub start: i64,
    pub end: i64,
    /// The earliest offset the topic still held (above 0: retention removed older ones).
    pub low: i64,
    /// Where the broker says the range ends, for the progress estimate only: a broker may
    /// answer a timestamp lookup coarsely (earlier than exact), which is safe for the start
    /// (the timestamp filter drops what is before the range) but would cut the end short.
    pub estimated_end: i64,
}

impl Plan {
    pub fn estimated_total(&self) -> i64 {
        self.partitions
            .iter()
            .map(|s| match s.estimated_end > s.start {
                true => s.estimated_end - s.start,
                false => s.end - s.start,
            })
            .sum()
    }
}

/// Per partition: the next offset to read, and the Kafka timestamps of the first and last
/// message read (the range actually scanned).
pub type Positions = BTreeMap<i32, Position>;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Position {
    pub next: i64,
    /// Read to the end of its part of the range.
    #[serde(default)]
    pub done: bool,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

pub type Reader = StreamConsumer;

/// The group id the backtest client carries (`<KAFKA_GROUP_ID>-backtest`): librdkafka needs
/// one, and a broker with ACLs must allow it to describe the topic.
pub fn backtest_group(live: &str) -> String {
    format!("{live}-backtest")
}

/// A client with the live consumer's connection settings (brokers, SASL, TLS).
pub fn reader(config: &Config) -> Result<Arc<Reader>, Error> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.kafka_bootstrap_servers);
    for option in &config.kafka_options {
        client.set(&option.key, &option.value);
    }
    client
        // librdkafka's assign needs a group id; partitions are assigned, never subscribed,
        // so the group is never joined, and nothing is ever committed to it.
        .set("group.id", backtest_group(&config.kafka_group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // The range's end offsets were taken when it was planned; EOF events would only
        // be logged as errors by the client.
        .set("enable.partition.eof", "false")
        // Past the earliest offset held (retention ran during the backtest): go on from
        // there, and the scanned range says so.
        .set("auto.offset.reset", "earliest")
        .set("queued.max.messages.kbytes", "8192")
        // As for the live consumer: librdkafka's 1 s default pause once its prefetch queue
        // was full held a backtest to a fifth of its speed.
        .set("fetch.queue.backoff.ms", "20");
    Ok(Arc::new(client.create()?))
}

/// Finds the offsets of `range` in every partition of `topic`. Blocking: run it off the
/// async workers.
pub fn plan(reader: &Reader, topic: &str, range: Range) -> Result<Plan, Error> {
    let metadata = reader.fetch_metadata(Some(topic), KAFKA_TIMEOUT)?;
    let partitions: Vec<i32> = match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            t.partitions().iter().map(|p| p.id()).collect()
        }
        _ => return Err(Error::MissingTopic(topic.to_owned())),
    };
    let mut marks = Vec::with_capacity(partitions.len());
    for &p in &partitions {
        marks.push((p, reader.fetch_watermarks(topic, p, KAFKA_TIMEOUT)?));
    }
    let spans = match range {
        Range::Time { from, to } => {
            let starts = offsets_at(reader, topic, &marks, from)?;
            let ends = offsets_at(reader, topic, &marks, to)?;
            marks
                .iter()
                .zip(starts.iter().zip(&ends))
                .map(|(&(partition, (low, high)), (&start, &end))| Span {
                    partition,
                    start,
                    end: high,
                    low,
                    estimated_end: end.max(start),
                })
                .collect()
        }
        Range::Last(n) => last(&marks, n),
    };
    Ok(Plan { partitions: spans })
}

/// Per partition, the first offset whose timestamp is at or after `ms`; the high watermark
/// when there is none.
fn offsets_at(
    reader: &Reader,
    topic: &str,
    marks: &[(i32, (i64, i64))],
    ms: i64,
) -> Result<Vec<i64>, Error> {
    let mut list = TopicPartitionList::new();
    for &(p, _) in marks {
        list.add_partition_offset(topic, p, Offset::Offset(ms))?;
    }
    let found = reader.offsets_for_times(list, KAFKA_TIMEOUT)?;
    Ok(marks
        .iter()
        .map(
            |&(p, (low, high))| match found.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o.clamp(low, high),
                _ => high,
            },
        )
        .collect())
}

/// The newest `n` messages: each partition gives its share of `n` in proportion to what it
/// holds (the rounding remainder from the first partitions).
fn last(marks: &[(i32, (i64, i64))], n: i64) -> Vec<Span> {
    let held: i64 = marks.iter().map(|(_, (l, h))| h - l).sum();
    let wanted = n.min(held);
    let mut spans: Vec<Span> = marks
        .iter()
        .map(|&(partition, (low, high))| {
            // i128: a partition's size times `n` may not fit an i64.
            let share = match held {
                0 => 0,
                _ => ((high - low) as i128 * wanted as i128 / held as i128) as i64,
            };
            Span {
                partition,
                start: high - share,
                end: high,
                low,
                estimated_end: high,
            }
        })
        .collect();
    let mut left = wanted - spans.iter().map(|s| s.end - s.start).sum::<i64>();
    for s in &mut spans {
        let more = left.min(s.start - s.low);
        s.start -= more;
        left -= more;
    }
    spans
}

/// Stops fetching a partition whose part of the range is read (the live traffic after it
/// would otherwise be fetched and thrown away, and count against the rate cap).
pub fn pause(reader: &Reader, topic: &str, partition: i32) -> Result<(), Error> {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    reader.pause(&list)?;
    Ok(())
}

/// The next offset the client will hand out for `partition`, if it knows one.
pub fn position(reader: &Reader, topic: &str, partition: i32) -> Option<i64> {
    let positions = reader.position().ok()?;
    match positions.find_partition(topic, partition)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// Assigns the partitions not read to their end yet, at their next offsets.
pub fn assign(
    reader: &Reader,
    topic: &str,
    plan: &Plan,
    positions: &Positions,
) -> Result<usize, Error> {
    let mut list = TopicPartitionList::new();
    for s in &plan.partitions {
        let (next, done) = positions
            .get(&s.partition)
            .map_or((s.start, false), |p| (p.next, p.done));
        if next < s.end && !done {
            list.add_partition_offset(topic, s.partition, Offset::Offset(next))?;
        }
    }
    reader.assign(&list)?;
    Ok(list.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_n_are_shared_in_proportion_and_never_beyond_what_is_held() {
        let marks = [(0, (0, 100)), (1, (50, 150)), (2, (0, 0)), (3, (10, 20))];
        let taken = |spans: Vec<Span>| -> Vec<i64> {
            assert!(spans.iter().all(|s| s.start >= s.low && s.start <= s.end));
            spans.iter().map(|s| s.end - s.start).collect()
        };
        assert_eq!(taken(last(&marks, 105)), [50, 50, 0, 5]);
        // 3.3 + 3.3 + 0 + 0.3: the remainder comes from the first partition.
        assert_eq!(taken(last(&marks, 7)), [4, 3, 0, 0]);
        assert_eq!(taken(last(&marks, 0)), [0, 0, 0, 0]);
        let all = last(&marks, 1_000);
        assert_eq!(all.iter().map(|s| s.end - s.start).sum::<i64>(), 210);
        assert!(all.iter().zip(&marks).all(|(s, (_, (l, _)))| s.start == *l));
    }
}
