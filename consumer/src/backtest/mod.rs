//! Backtests: what a draft rule would have caught in traffic already in the topic.
//!
//! The API queues a job (`POST /api/v1/rules/backtests`); here a worker claims it from
//! PostgreSQL ([`store::claim`], `FOR UPDATE SKIP LOCKED` with a lease), reads the range
//! with a client of its own that joins no consumer group ([`replay`]), evaluates every event
//! with the active set, the set with the draft applied, and the draft alone
//! ([`flagstream_rules::backtest`]), and writes only the job's row. Checkpoints store the
//! read positions and the tally in one statement, so a worker that dies is replaced (the
//! lease runs out) by one that resumes there and counts nothing twice. Reading is
//! throttled to `BACKTEST_MAX_EVENTS_PER_SEC` so live consumption keeps priority.

mod replay;

pub use replay::backtest_group;
mod store;

use std::sync::Arc;
use std::time::Duration;

use flagstream_rules::backtest::{At, Draft, Sets, Tally};
use flagstream_rules::{Event, Origin};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message as _;
use serde_json::{json, Value};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::Error;
use replay::{Plan, Positions, Range, Reader};
use store::{Checkpoint, End, Job};

/// How often a running job stores its progress (and renews its lease).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Claims of one job before it is failed (each resumes from the last checkpoint).
const MAX_ATTEMPTS: i32 = 5;
/// Messages evaluated together off the async workers.
const CHUNK: usize = 500;

/// What the backtest workers need from the consumer's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub topic: String,
    pub threshold: u32,
    pub max_rate: u32,
    pub max_time: Duration,
    pub max_events: u64,
    pub max_event_bytes: usize,
    pub retention_days: u32,
    pub lease: Duration,
    pub poll: Duration,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            topic: config.kafka_topic.clone(),
            threshold: config.flag_threshold,
            max_rate: config.backtest_max_events_per_sec.max(1),
            max_time: Duration::from_secs(config.backtest_max_seconds.max(1)),
            max_events: config.backtest_max_events.max(1),
            max_event_bytes: config.max_event_bytes,
            retention_days: config.backtest_retention_days.max(1),
            lease: Duration::from_secs(config.backtest_lease_secs.max(2)),
            poll: Duration::from_secs(1),
        }
    }
}

/// A name no other worker has, now or after a restart: a job's checkpoints are accepted
/// only from the worker that claimed it.
pub fn worker_name(index: usize) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "consumer".into());
    format!(
        "{host}/{}/{index}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Claims and runs jobs until `shutdown`. A job in hand is checkpointed and released, so
/// another worker (or this one, restarted) resumes it at once.
pub async fn run(
    pool: PgPool,
    config: Config,
    settings: Settings,
    name: String,
    shutdown: CancellationToken,
) {
    loop {
        match round(&pool, &config, &settings, &name, &shutdown).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, worker = %name, "backtest round failed; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(settings.poll) => {}
        }
    }
}

/// Runs one job if there is one; true if it did.
async fn round(
    pool: &PgPool,
    config: &Config,
    settings: &Settings,
    worker: &str,
    shutdown: &CancellationToken,
) -> Result<bool, Error> {
    let expired = store::expire(pool).await?;
    if expired > 0 {
        tracing::info!(expired, "backtest results past their retention removed");
    }
    let Some(job) = store::claim(pool, worker, settings.lease).await? else {
        return Ok(false);
    };
    let id = job.id;
    tracing::info!(
        backtest = id,
        worker,
        attempt = job.attempts,
        "backtest claimed"
    );
    if job.attempts > MAX_ATTEMPTS {
        let why = format!(
            "gave up after {MAX_ATTEMPTS} attempts; the last failed: {}",
            job.note.as_deref().unwrap_or("(no reason recorded)")
        );
        store::fail(pool, id, worker, &why, settings.retention_days).await?;
        return Ok(true);
    }
    let ran = match Run::start(pool, config, settings, worker, job).await {
        Ok(mut run) => run.read(shutdown).await,
        Err(Error::Config(why)) => {
            store::fail(pool, id, worker, &why, settings.retention_days).await?;
            return Ok(true);
        }
        Err(e) => Err(e),
    };
    if let Err(e) = ran {
        // Kept on the job for whoever looks at it; the lease runs out and it is retried.
        tracing::warn!(backtest = id, error = %e, "backtest attempt failed");
        store::note(pool, id, worker, &format!("attempt failed: {e}")).await?;
    }
    Ok(true)
}

/// One worker's run of one job.
struct Run<'a> {
    pool: &'a PgPool,
    settings: &'a Settings,
    worker: &'a str,
    id: i64,
    reader: Arc<Reader>,
    sets: Arc<Sets>,
    plan: Plan,
    positions: Positions,
    tally: Tally,
    /// [from, to) in Kafka milliseconds, for a time range.
    window: Option<(i64, i64)>,
    requested_from: Option<OffsetDateTime>,
}

impl<'a> Run<'a> {
    /// Compiles the draft against the active rules and, on a job's first run, fixes the
    /// offsets it reads. A job that cannot run is a `Config` error (it is failed).
    async fn start(
        pool: &'a PgPool,
        config: &Config,
        settings: &'a Settings,
        worker: &'a str,
        job: Job,
    ) -> Result<Run<'a>, Error> {
        let bad = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("{what}: {e}"));
        let draft: Draft =
            serde_json::from_value(job.draft).map_err(|e| bad("the draft is not valid", &e))?;
        let active: Vec<_> = crate::rules::load(pool, settings.threshold)
            .await?
            .set
            .rules()
            .cloned()
            .collect();
        let threshold = settings.threshold;
        let sets = tokio::task::spawn_blocking(move || Sets::build(active, &draft, threshold))
            .await
            .map_err(|e| Error::Worker(e.to_string()))?
            .map_err(|e| bad("the draft does not compile", &e))?;
        let range = match (job.range_from, job.range_to, job.last_events) {
            (Some(from), to, _) => Range::Time {
                from: millis(from),
                to: to.map_or(i64::MAX, millis),
            },
            (None, _, Some(n)) => Range::Last(n),
            _ => return Err(Error::Config("the job has no range".into())),
        };
        let reader = replay::reader(config)?;
        let plan = match job.plan {
            Some(plan) => serde_json::from_value(plan).map_err(|e| bad("bad plan", &e))?,
            None => {
                let (r, topic) = (Arc::clone(&reader), settings.topic.clone());
                tokio::task::spawn_blocking(move || replay::plan(&r, &topic, range))
                    .await
                    .map_err(|e| Error::Worker(e.to_string()))??
            }
        };
        let positions = match job.positions {
            Some(p) => serde_json::from_value(p).map_err(|e| bad("bad positions", &e))?,
            None => Positions::new(),
        };
        let tally = match job.tally {
            Some(t) => serde_json::from_value(t).map_err(|e| bad("bad tally", &e))?,
            None => Tally::default(),
        };
        Ok(Run {
            pool,
            settings,
            worker,
            id: job.id,
            reader,
            sets: Arc::new(sets),
            plan,
            positions,
            tally,
            window: match range {
                Range::Time { from, to } => Some((from, to)),
                Range::Last(_) => None,
            },
            requested_from: job.range_from,
        })
    }

    /// Reads to the end of the range, a cancel, a limit, the loss of the lease or shutdown.
    async fn read(&mut self, shutdown: &CancellationToken) -> Result<(), Error> {
        let (r, topic, plan, positions) = (
            Arc::clone(&self.reader),
            self.settings.topic.clone(),
            self.plan.clone(),
            self.positions.clone(),
        );
        let assigned =
            tokio::task::spawn_blocking(move || replay::assign(&r, &topic, &plan, &positions))
                .await
                .map_err(|e| Error::Worker(e.to_string()))??;
        let mut pending: Vec<i32> = self
            .plan
            .partitions
            .iter()
            .filter(|s| {
                let p = self.positions.get(&s.partition);
                p.map_or(s.start, |p| p.next) < s.end && !p.is_some_and(|p| p.done)
            })
            .map(|s| s.partition)
            .collect();
        debug_assert_eq!(assigned, pending.len());
        // Its own handle: a received message borrows the client, not the run.
        let reader = Arc::clone(&self.reader);
        let started = Instant::now();
        let mut read_here: u64 = 0;
        let mut last_checkpoint = Instant::now();
        let mut chunk: Vec<Read> = Vec::with_capacity(CHUNK);
        let stop = loop {
            if pending.is_empty() {
                break Stop::Done(None);
            }
            if self.tally.events >= self.settings.max_events {
                break Stop::Done(Some(
                    "stopped at BACKTEST_MAX_EVENTS; the range was not read to its end",
                ));
            }
            if started.elapsed() >= self.settings.max_time {
                break Stop::Done(Some(
                    "stopped at BACKTEST_MAX_SECONDS; the range was not read to its end",
                ));
            }
            // The rate cap: never ahead of max_rate since this run started.
            let due = Duration::from_secs_f64(read_here as f64 / f64::from(self.settings.max_rate));
            let wait = due.saturating_sub(started.elapsed());
            let received = tokio::select! {
                _ = shutdown.cancelled() => break Stop::Shutdown,
                _ = tokio::time::sleep(wait), if !wait.is_zero() => None,
                m = tokio::time::timeout(Duration::from_millis(100), reader.recv()), if wait.is_zero() => Some(m),
            };
            match received {
                Some(Ok(Ok(m))) => {
                    read_here += 1;
                    let partition = m.partition();
                    // Fetched before its partition was paused: past its part of the range.
                    let Some(end) = self.end(partition).filter(|_| pending.contains(&partition))
                    else {
                        continue;
                    };
                    let ms = m.timestamp().to_millis();
                    // A time range ends at the partition's first message at or after its
                    // end, as the end offset Kafka would give for it.
                    let past = self
                        .window
                        .is_some_and(|(_, to)| ms.is_some_and(|ms| ms >= to));
                    if past {
                        self.partition_done(partition, &mut pending);
                    } else if m.offset() < end {
                        chunk.push(Read {
                            partition,
                            offset: m.offset(),
                            ms,
                            payload: m.payload().map(|p| {
                                match p.len() > self.settings.max_event_bytes {
                                    true => Vec::new(),
                                    false => p.to_vec(),
                                }
                            }),
                        });
                    }
                    if m.offset() + 1 >= end {
                        self.partition_done(partition, &mut pending);
                    }
                }
                Some(Ok(Err(e))) => {
                    tracing::warn!(error = %e, backtest = self.id, "kafka receive failed")
                }
                // Idle: a partition whose last offsets hold no message (transaction markers,
                // compaction) is at its end once the client's position is.
                Some(Err(_)) => {
                    for partition in pending.clone() {
                        let at = replay::position(&reader, &self.settings.topic, partition);
                        if at
                            .zip(self.end(partition))
                            .is_some_and(|(at, end)| at >= end)
                        {
                            self.partition_done(partition, &mut pending);
                        }
                    }
                }
                None => {}
            }
            if chunk.len() >= CHUNK || (!chunk.is_empty() && pending.is_empty()) {
                self.evaluate(std::mem::take(&mut chunk)).await?;
            }
            if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                self.evaluate(std::mem::take(&mut chunk)).await?;
                last_checkpoint = Instant::now();
                match store::checkpoint(
                    self.pool,
                    self.id,
                    self.worker,
                    self.settings.lease,
                    &self.checkpoint()?,
                )
                .await?
                {
                    None => break Stop::Lost,
                    Some(true) => break Stop::Cancelled,
                    Some(false) => {}
                }
            }
        };
        self.reader.unassign()?;
        self.evaluate(chunk).await?;
        let end = match stop {
            Stop::Lost => {
                tracing::warn!(
                    backtest = self.id,
                    "backtest taken over by another worker; stopping"
                );
                return Ok(());
            }
            Stop::Shutdown => {
                // Checkpointed, with a lease that runs out at once: the next worker resumes.
                store::checkpoint(
                    self.pool,
                    self.id,
                    self.worker,
                    Duration::ZERO,
                    &self.checkpoint()?,
                )
                .await?;
                return Ok(());
            }
            Stop::Cancelled => ("cancelled", None),
            Stop::Done(note) => ("done", note),
        };
        let result = self.result();
        let finished = store::finish(
            self.pool,
            self.id,
            self.worker,
            &self.checkpoint()?,
            &End {
                status: end.0,
                result: Some(&result),
                note: end.1,
                retention_days: self.settings.retention_days,
            },
        )
        .await?;
        tracing::info!(
            backtest = self.id,
            status = end.0,
            events = self.tally.events,
            finished,
            "backtest ended"
        );
        Ok(())
    }

    fn partition_done(&mut self, partition: i32, pending: &mut Vec<i32>) {
        if !pending.contains(&partition) {
            return;
        }
        pending.retain(|p| *p != partition);
        self.positions.entry(partition).or_default().done = true;
        if let Err(e) = replay::pause(&self.reader, &self.settings.topic, partition) {
            tracing::warn!(error = %e, backtest = self.id, partition, "cannot pause a partition read to its end");
        }
    }

    fn end(&self, partition: i32) -> Option<i64> {
        self.plan
            .partitions
            .iter()
            .find(|s| s.partition == partition)
            .map(|s| s.end)
    }

    /// Evaluates a chunk off the async workers and advances the positions past it.
    async fn evaluate(&mut self, chunk: Vec<Read>) -> Result<(), Error> {
        if chunk.is_empty() {
            return Ok(());
        }
        for r in &chunk {
            let p = self.positions.entry(r.partition).or_default();
            p.next = p.next.max(r.offset + 1);
            if let Some(ms) = r.ms {
                p.first_ms.get_or_insert(ms);
                p.last_ms = Some(ms);
            }
        }
        let sets = Arc::clone(&self.sets);
        let mut tally = std::mem::take(&mut self.tally);
        let (window, topic) = (self.window, self.settings.topic.clone());
        self.tally = tokio::task::spawn_blocking(move || {
            for r in chunk {
                if let Some((from, to)) = window {
                    // Out-of-order timestamps: the seek found the range's first offset, the
                    // filter keeps exactly the range.
                    if r.ms.is_none_or(|ms| ms < from || ms >= to) {
                        continue;
                    }
                }
                let origin = Origin {
                    topic: &topic,
                    partition: r.partition,
                    offset: r.offset,
                };
                let event = match r.payload.as_deref().filter(|p| !p.is_empty()) {
                    Some(bytes) => Event::parse(bytes, Some(origin)).ok(),
                    None => None,
                };
                let Some(event) = event else {
                    tally.unreadable += 1;
                    continue;
                };
                let timer = std::time::Instant::now();
                let draft = sets.draft.evaluate(&event);
                tally.draft_nanos += timer.elapsed().as_nanos() as u64;
                let active = sets.active.evaluate(&event);
                let proposed = sets.proposed_flags(&event, &active, &draft);
                let at = At {
                    partition: r.partition,
                    offset: r.offset,
                };
                tally.add(&event, at, &draft, active.flagged, proposed);
            }
            tally
        })
        .await
        .map_err(|e| Error::Worker(e.to_string()))?;
        Ok(())
    }

    fn checkpoint(&self) -> Result<Checkpoint, Error> {
        let json =
            |v: Result<Value, serde_json::Error>| v.map_err(|e| Error::Worker(e.to_string()));
        Ok(Checkpoint {
            plan: json(serde_json::to_value(&self.plan))?,
            positions: json(serde_json::to_value(&self.positions))?,
            tally: json(serde_json::to_value(&self.tally))?,
            scanned: i64::try_from(self.tally.events + self.tally.unreadable).unwrap_or(i64::MAX),
            estimated_total: self.plan.estimated_total(),
        })
    }

    /// The report, with what the topic still held of the range.
    fn result(&self) -> Value {
        let mut result = self.tally.report();
        let first = self.positions.values().filter_map(|p| p.first_ms).min();
        let last = self.positions.values().filter_map(|p| p.last_ms).max();
        // Partitions read from the earliest offset they hold cannot show anything older
        // than their first message: the topic holds nothing before the earliest of those.
        let available_from = self
            .plan
            .partitions
            .iter()
            .filter(|s| s.start == s.low && s.end > s.start)
            .filter_map(|s| self.positions.get(&s.partition).and_then(|p| p.first_ms))
            .min();
        let requested = self.requested_from.map(millis);
        let complete = match (requested, available_from) {
            (Some(from), Some(held)) => held <= from,
            _ => true,
        };
        let retention = self.plan.partitions.iter().any(|s| s.low > 0);
        result["scanned"] = json!({
            "first_message_at": first.map(rfc3339),
            "last_message_at": last.map(rfc3339),
        });
        result["coverage"] = json!({
            "complete": complete,
            "requested_from": self.requested_from.map(|t| rfc3339(millis(t))),
            "available_from": available_from.map(rfc3339),
            "note": (!complete).then_some(match retention {
                true => "the topic's retention no longer holds the start of the range: only what it holds was scanned",
                false => "the topic holds nothing before available_from: only what it holds was scanned",
            }),
            "earliest_offsets": self.plan.partitions.iter().map(|s| (s.partition.to_string(), json!(s.low))).collect::<serde_json::Map<_, _>>(),
        });
        result
    }
}

/// A message of the range, detached from the client.
struct Read {
    partition: i32,
    offset: i64,
    ms: Option<i64>,
    /// Empty when larger than `MAX_EVENT_BYTES` (counted as unreadable, as the live consumer
    /// dead-letters it).
    payload: Option<Vec<u8>>,
}

enum Stop {
    Done(Option<&'static str>),
    Cancelled,
    Lost,
    Shutdown,
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn rfc3339(ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
}
