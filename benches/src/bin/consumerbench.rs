//! Measures the consumer end to end: starts the consumer binary against a broker and
//! PostgreSQL that are already running, produces a corpus of events as fast as the broker
//! takes them, and reports events/s from first produce to last commit, the consumer's CPU
//! time per event (from /proc) and the receipt → commit latency of its batches (from its
//! own histogram). With `--backtest-events N`, a last phase measures a backtest replaying N
//! events while live traffic is ingested at a steady rate. `scripts/bench-consumer`
//! provisions the services and runs this.

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use flagstream_benches::traffic::TrafficGenerator;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::ClientContext;
use tokio::time::Instant;

#[derive(Debug, Parser)]
#[command(name = "flagstream-consumer-bench", version)]
struct Args {
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    bootstrap_servers: String,
    /// Prefix of the two topics (`<topic>-live`, `<topic>-backlog`), which must exist and
    /// be empty.
    #[arg(long, env = "KAFKA_TOPIC")]
    topic: String,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The consumer binary to measure (a release build).
    #[arg(long, env = "CONSUMER_BIN")]
    consumer_bin: PathBuf,
    #[arg(long, env = "BENCH_EVENTS", default_value_t = 200_000)]
    events: u64,
    #[arg(long, env = "BENCH_EVENT_BYTES", default_value_t = 2048)]
    event_bytes: usize,
    #[arg(long, env = "BENCH_FLAG_RATIO", default_value_t = 0.05)]
    flag_ratio: f64,
    #[arg(long, env = "BATCH_SIZE", default_value_t = 5000)]
    batch_size: usize,
    #[arg(long, env = "BENCH_METRICS_PORT", default_value_t = 19464)]
    metrics_port: u16,
    /// Events in the topic a backtest replays (`<topic>-history`, which must exist and be
    /// empty); 0 skips the phase.
    #[arg(long, env = "BENCH_BACKTEST_EVENTS", default_value_t = 0)]
    backtest_events: u64,
    /// Live events per second produced while the backtest runs.
    #[arg(long, env = "BENCH_LIVE_RATE", default_value_t = 5_000)]
    live_rate: u64,
    /// The backtest's cap (`BACKTEST_MAX_EVENTS_PER_SEC`).
    #[arg(long, env = "BACKTEST_MAX_EVENTS_PER_SEC", default_value_t = 20_000)]
    backtest_rate: u64,
}

/// The consumer's counters and latency histogram, read from its /metrics.
#[derive(Debug, Default)]
struct Scrape {
    consumed: u64,
    dead_letters: u64,
    flagged: u64,
    assigned_partitions: u64,
    /// (upper bound in seconds, cumulative count) of `batch_seconds`.
    buckets: Vec<(f64, u64)>,
    /// (sum, count) of the histograms that say where a batch's time goes.
    batch_size: (f64, f64),
    eval: (f64, f64),
    db_write: (f64, f64),
}

impl Scrape {
    fn histogram(&mut self, name: &str) -> Option<&mut (f64, f64)> {
        match name {
            "flagstream_batch_size" => Some(&mut self.batch_size),
            "flagstream_rule_evaluation_seconds" => Some(&mut self.eval),
            "flagstream_db_write_seconds" => Some(&mut self.db_write),
            _ => None,
        }
    }
}

fn mean((sum, count): (f64, f64)) -> f64 {
    sum / count.max(1.0)
}

fn scrape(body: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        if name == "flagstream_events_consumed_total" {
            s.consumed = value as u64;
        } else if name == "flagstream_assigned_partitions" {
            s.assigned_partitions = value as u64;
        } else if name == "flagstream_events_flagged_total" {
            s.flagged = value as u64;
        } else if name.starts_with("flagstream_dead_letters_total") {
            s.dead_letters += value as u64;
        } else if let Some(le) = name.strip_prefix("flagstream_batch_seconds_bucket{le=\"") {
            let bound = le.trim_end_matches("\"}");
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().unwrap_or(f64::INFINITY)
            };
            s.buckets.push((bound, value as u64));
        } else if let Some(h) = name.strip_suffix("_sum").and_then(|n| s.histogram(n)) {
            h.0 = value;
        } else if let Some(h) = name.strip_suffix("_count").and_then(|n| s.histogram(n)) {
            h.1 = value;
        }
    }
    s
}

/// The bucket bound under which `q` of the batches fall.
fn quantile(buckets: &[(f64, u64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0, |b| b.1);
    let rank = (q * total as f64).ceil() as u64;
    buckets
        .iter()
        .find(|b| b.1 >= rank)
        .map_or(f64::NAN, |b| b.0)
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("odd /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

async fn get_metrics(http: &reqwest::Client, url: &str) -> Option<Scrape> {
    let body = http.get(url).send().await.ok()?.text().await.ok()?;
    Some(scrape(&body))
}

/// Events/s at which the broker hands the whole topic to a consumer that does nothing with
/// it: the ceiling the consumer's end-to-end rate is measured against.
fn drain_rate(bootstrap: &str, topic: &str, events: u64) -> anyhow::Result<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-drain-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let mut seen = 0;
    let mut started = None;
    while seen < events {
        if std::time::Instant::now() > deadline {
            bail!("drained {seen} of {events} messages in time");
        }
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m?;
            started.get_or_insert_with(std::time::Instant::now);
            seen += 1;
        }
    }
    // Timed from the first message, so group join and assignment are not counted.
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    Ok(events as f64 / elapsed.as_secs_f64())
}

fn group_of(topic: &str) -> String {
    format!("bench-{}-{topic}", std::process::id())
}

/// The consumer under test, started against the given topic in a group of its own.
struct UnderTest {
    child: Child,
    url: String,
}

impl UnderTest {
    fn start(args: &Args, topic: &str) -> anyhow::Result<UnderTest> {
        UnderTest::start_with(args, topic, &[])
    }

    fn start_with(args: &Args, topic: &str, env: &[(&str, String)]) -> anyhow::Result<UnderTest> {
        let key = "YmVuY2htYXJrLW9ubHkta2V5LWZsYWdzdHJlYW0tMzI="; // 32 bytes, benchmark only
        let child = Command::new(&args.consumer_bin)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("DATABASE_URL", &args.database_url)
            .env("KAFKA_BOOTSTRAP_SERVERS", &args.bootstrap_servers)
            .env("KAFKA_TOPIC", topic)
            .env("KAFKA_GROUP_ID", group_of(topic))
            .env("BATCH_SIZE", args.batch_size.to_string())
            .env("METRICS_ADDR", format!("127.0.0.1:{}", args.metrics_port))
            .env("ENCRYPTION_KEY", key)
            .env(
                "KAFKA_OPTIONS",
                "session.timeout.ms=6000,heartbeat.interval.ms=500",
            )
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .spawn()
            .context("start the consumer")?;
        let url = format!("http://127.0.0.1:{}/metrics", args.metrics_port);
        Ok(UnderTest { child, url })
    }

    /// Polls until the consumer owns its partitions: joining the group is start-up cost
    /// (tansu, like Kafka, delays the first rebalance by seconds), not throughput.
    async fn assigned(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while get_metrics(http, &self.url)
            .await
            .is_none_or(|s| s.assigned_partitions == 0)
        {
            if Instant::now() > deadline {
                bail!("the consumer did not start and join its group");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Polls until every event is stored (as a flag-or-not or a dead letter).
    async fn stored(&self, http: &reqwest::Client, events: u64) -> anyhow::Result<Scrape> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let s = get_metrics(http, &self.url).await.unwrap_or_default();
            if s.consumed + s.dead_letters >= events {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!(
                    "the consumer stored {} of {events} messages in time",
                    s.consumed + s.dead_letters
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A run that fails leaves no consumer behind (it would hold the metrics port).
impl Drop for UnderTest {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Counts failed deliveries, so a lost message fails the run instead of skewing it.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Produces the corpus as fast as the broker takes it; returns the time it took.
fn produce(bootstrap: &str, topic: &str, corpus: &[Vec<u8>]) -> anyhow::Result<Duration> {
    produce_paced(bootstrap, topic, corpus, None)
}

/// Produces the payloads, at most `rate` per second if given; returns the time it took. A
/// plain producer without a future per message, so the load tool takes little of the CPU
/// it shares with what it measures.
fn produce_paced<P: AsRef<[u8]>>(
    bootstrap: &str,
    topic: &str,
    payloads: impl IntoIterator<Item = P>,
    rate: Option<u64>,
) -> anyhow::Result<Duration> {
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create_with_context(Deliveries::default())?;
    let started = Instant::now();
    for (i, payload) in payloads.into_iter().enumerate() {
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(i as f64 / rate.max(1) as f64);
            std::thread::sleep(due.saturating_sub(started.elapsed()));
        }
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(payload.as_ref());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120))?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} messages were not delivered");
    }
    Ok(started.elapsed())
}

/// One measurement: events/s from `started` to the last commit, consumer CPU per event
/// since `cpu_before`, and the batch latency and breakdown from the consumer's metrics.
fn report(title: &str, events: u64, elapsed: Duration, cpu: f64, last: &Scrape) {
    let n = events as f64;
    println!("{title}");
    println!(
        "  end to end             {:.0} events/s ({:.2} s to the last commit)",
        n / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "  consumer CPU           {:.2} µs/event ({cpu:.2} s user+system)",
        cpu * 1e6 / n
    );
    println!(
        "  receipt → commit p50   ≤ {:.1} ms",
        quantile(&last.buckets, 0.50) * 1e3
    );
    println!(
        "  receipt → commit p99   ≤ {:.1} ms",
        quantile(&last.buckets, 0.99) * 1e3
    );
    println!(
        "  batches                {:.0} of {:.0} events on average",
        last.batch_size.1,
        mean(last.batch_size)
    );
    println!(
        "  per batch              {:.1} ms parse + rules + sealing, {:.1} ms database transaction",
        mean(last.eval) * 1e3,
        mean(last.db_write) * 1e3
    );
}

/// Starts the consumer on `topic` and, once it owns its partitions, runs `during` and waits
/// until every event is stored: returns what `during` gave, the time and consumer CPU
/// seconds from then, and the consumer's last metrics.
async fn measure<T>(
    args: &Args,
    http: &reqwest::Client,
    topic: &str,
    during: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, Duration, f64, Scrape)> {
    let consumer = UnderTest::start(args, topic)?;
    consumer.assigned(http).await?;
    let pid = consumer.child.id();
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let value = during.await?;
    let last = consumer.stored(http, args.events).await?;
    let (elapsed, cpu) = (started.elapsed(), cpu_seconds(pid)? - cpu_before);
    consumer.stop();
    Ok((value, elapsed, cpu, last))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    // Generated before any clock starts, so the producer's cost is the broker client's only.
    let mut generator = TrafficGenerator::new(42, args.flag_ratio, 0.001);
    generator.event_bytes = args.event_bytes;
    let corpus: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..args.events)
            .map(|_| generator.next_event().payload)
            .collect(),
    );
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let n = args.events;
    println!("events                   {n}");
    println!(
        "mean event size          {:.0} bytes",
        bytes as f64 / n as f64
    );

    // Live: the consumer is in its group and the events are produced while it runs.
    let live_topic = format!("{}-live", args.topic);
    let producing = {
        let (servers, topic, corpus) = (
            args.bootstrap_servers.clone(),
            live_topic.clone(),
            Arc::clone(&corpus),
        );
        async move { tokio::task::spawn_blocking(move || produce(&servers, &topic, &corpus)).await? }
    };
    let (produced, elapsed, cpu, last) = measure(&args, &http, &live_topic, producing).await?;
    println!(
        "flagged                  {} ({:.1} %)",
        last.flagged,
        100.0 * last.flagged as f64 / n as f64
    );
    println!(
        "produce rate             {:.0} events/s, while consuming",
        n as f64 / produced.as_secs_f64()
    );
    report(
        "live: produced while the consumer runs",
        n,
        elapsed,
        cpu,
        &last,
    );

    // Backlog: the whole corpus waits in the broker; the consumer drains it.
    let backlog_topic = format!("{}-backlog", args.topic);
    let cpu_before = cpu_seconds(std::process::id())?;
    let produced = produce(&args.bootstrap_servers, &backlog_topic, &corpus)?;
    let cpu = cpu_seconds(std::process::id())? - cpu_before;
    println!(
        "produce alone            {:.0} events/s, {:.2} µs CPU/event in this producer",
        n as f64 / produced.as_secs_f64(),
        cpu * 1e6 / n as f64
    );
    let ((), elapsed, cpu, last) = measure(&args, &http, &backlog_topic, async { Ok(()) }).await?;
    report("backlog: drained from the broker", n, elapsed, cpu, &last);

    let (servers, topic) = (args.bootstrap_servers.clone(), backlog_topic);
    let cpu_before = cpu_seconds(std::process::id())?;
    let drained = tokio::task::spawn_blocking(move || drain_rate(&servers, &topic, n)).await??;
    let cpu = cpu_seconds(std::process::id())? - cpu_before;
    println!(
        "broker alone             {drained:.0} events/s to a consumer that does nothing, \
         {:.2} µs CPU/event in its Kafka client",
        cpu * 1e6 / n as f64
    );
    if args.backtest_events > 0 {
        backtest_during_live(&args, &http).await?;
    }
    Ok(())
}

/// A draft the backtest tries: a keyword rule and a regex rule, new to the active set; the
/// keywords and the regex occur in one of the planted findings (about 1 % of the events),
/// which the active set flags already: a redundant draft, as many are.
fn draft() -> serde_json::Value {
    serde_json::json!({"rules": [
        {"id": "bench.identity", "name": "Identity documents", "severity": "high",
         "points": 40, "kind": "keyword",
         "keywords": ["social security number", "date of birth", "passport"]},
        {"id": "bench.ssn_shape", "name": "SSN shape", "severity": "low", "points": 10,
         "kind": "regex", "pattern": "[0-9]{3}-[0-9]{2}-[0-9]{4}"}
    ], "replaces": []})
}

/// Makes the group `group` start at the current end of `topic`: the consumer assigns its
/// partitions at the offsets PostgreSQL holds for it.
async fn start_at_end(
    args: &Args,
    db: &sqlx::PgPool,
    group: &str,
    topic: &str,
) -> anyhow::Result<()> {
    let (servers, t) = (args.bootstrap_servers.clone(), topic.to_owned());
    let ends = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(i32, i64)>> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &servers)
            .create()?;
        let metadata = client.fetch_metadata(Some(&t), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .first()
            .map(|m| m.partitions().len())
            .unwrap_or(0);
        (0..partitions as i32)
            .map(|p| {
                Ok((
                    p,
                    client.fetch_watermarks(&t, p, Duration::from_secs(10))?.1,
                ))
            })
            .collect()
    })
    .await??;
    for (partition, end) in ends {
        sqlx::query("INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4)")
            .bind(group)
            .bind(topic)
            .bind(partition)
            .bind(end)
            .execute(db)
            .await?;
    }
    Ok(())
}

/// The topic holds `backtest_events` events already consumed; a consumer ingests live
/// events at `live_rate`, first alone (the baseline), then while its backtest worker
/// replays the old ones. Reports the backtest's rate and the live ingest's latency and CPU
/// in both.
async fn backtest_during_live(args: &Args, http: &reqwest::Client) -> anyhow::Result<()> {
    let topic = format!("{}-history", args.topic);
    let n = args.backtest_events;
    let mut generator = TrafficGenerator::new(7, args.flag_ratio, 0.001);
    generator.event_bytes = args.event_bytes;
    let from = time::OffsetDateTime::now_utc() - Duration::from_secs(1);
    let (servers, t) = (args.bootstrap_servers.clone(), topic.clone());
    let produced = tokio::task::spawn_blocking(move || {
        let history = (0..n).map(|_| generator.next_event().payload);
        produce_paced(&servers, &t, history, None)
    })
    .await??;
    let to = time::OffsetDateTime::now_utc() + Duration::from_millis(1);
    println!(
        "backtest history         {n} events produced at {:.0} events/s",
        n as f64 / produced.as_secs_f64()
    );
    // The history counts as already consumed: the group starts at the end.
    let db = sqlx::PgPool::connect(&args.database_url).await?;
    start_at_end(args, &db, &group_of(&topic), &topic).await?;
    let env = [(
        "BACKTEST_MAX_EVENTS_PER_SEC",
        args.backtest_rate.to_string(),
    )];
    let title = format!("live at {} events/s", args.live_rate);

    let consumer = UnderTest::start_with(args, &topic, &env)?;
    let baseline = tokio::time::sleep(Duration::from_secs(20));
    let ((), sent, elapsed, cpu, last) = live_while(args, http, &consumer, &topic, async {
        baseline.await;
        Ok(())
    })
    .await?;
    consumer.stop();
    report(&format!("{title}, no backtest"), sent, elapsed, cpu, &last);

    let id: i64 = sqlx::query_scalar(
        "INSERT INTO backtests (created_by, draft, range_from, range_to)
         VALUES ('bench', $1, $2, $3) RETURNING id",
    )
    .bind(draft())
    .bind(from)
    .bind(to)
    .fetch_one(&db)
    .await?;
    let consumer = UnderTest::start_with(args, &topic, &env)?;
    let ((seconds, scanned, result), sent, elapsed, cpu, last) =
        live_while(args, http, &consumer, &topic, finished(&db, id)).await?;
    consumer.stop();
    println!(
        "backtest                 {scanned} events in {seconds:.1} s: {:.0} events/s \
         (cap {}), {} matching, {} new flags; draft rules {:.2} µs/event",
        scanned as f64 / seconds,
        args.backtest_rate,
        result["matching_events"],
        result["new_flags"],
        result["cost"]["draft_ns_per_event"].as_f64().unwrap_or(0.0) / 1e3
    );
    if scanned as u64 != n {
        bail!("the backtest scanned {scanned} of {n} events");
    }
    report(
        &format!("{title} while the backtest runs (CPU includes the backtest's)"),
        sent,
        elapsed,
        cpu,
        &last,
    );
    Ok(())
}

/// Produces live events at `live_rate` to the started consumer until `until` ends, then
/// waits until all are stored: what `until` gave, events sent, time, consumer CPU seconds
/// and the consumer's last metrics.
async fn live_while<T>(
    args: &Args,
    http: &reqwest::Client,
    consumer: &UnderTest,
    topic: &str,
    until: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, u64, Duration, f64, Scrape)> {
    consumer.assigned(http).await?;
    let pid = consumer.child.id();
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let live = {
        let (servers, t, stop) = (
            args.bootstrap_servers.clone(),
            topic.to_owned(),
            Arc::clone(&stop),
        );
        let mut generator = TrafficGenerator::new(8, args.flag_ratio, 0.001);
        generator.event_bytes = args.event_bytes;
        let rate = args.live_rate;
        tokio::task::spawn_blocking(move || {
            let mut sent = 0u64;
            let payloads = std::iter::from_fn(|| {
                (!stop.load(Ordering::Relaxed)).then(|| {
                    sent += 1;
                    generator.next_event().payload
                })
            });
            produce_paced(&servers, &t, payloads, Some(rate)).map(|_| sent)
        })
    };
    let value = until.await;
    stop.store(true, Ordering::Relaxed);
    let sent = live.await??;
    let value = value?;
    let last = consumer.stored(http, sent).await?;
    Ok((
        value,
        sent,
        started.elapsed(),
        cpu_seconds(pid)? - cpu_before,
        last,
    ))
}

/// Waits for the backtest to finish: its seconds, messages scanned and result.
async fn finished(db: &sqlx::PgPool, id: i64) -> anyhow::Result<(f64, i64, serde_json::Value)> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let row: (
            String,
            Option<f64>,
            i64,
            Option<serde_json::Value>,
            Option<String>,
        ) = sqlx::query_as(
            "SELECT status, extract(epoch FROM finished_at - started_at)::float8, scanned,
                        result, note FROM backtests WHERE id = $1",
        )
        .bind(id)
        .fetch_one(db)
        .await?;
        match row {
            (s, Some(secs), scanned, Some(result), _) if s == "done" => {
                return Ok((secs, scanned, result))
            }
            (s, _, _, _, note) if s == "failed" => bail!("the backtest failed: {note:?}"),
            _ if Instant::now() > deadline => bail!("the backtest did not finish within an hour"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
