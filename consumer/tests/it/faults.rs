//! Faults on real processes: consumers killed with SIGKILL, a second group member killed
//! mid-stream, PostgreSQL stopped and restarted. After each, every table must equal the
//! ground truth of what was produced: nothing lost, nothing written twice.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;

use crate::procs::{free_port, start_consumer, start_tansu};
use crate::support::{self, unique, CLEAN, FLAGGABLE};

const WITHIN: Duration = Duration::from_secs(180);

/// What the stored tables must add up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Truth {
    pub events: i64,
    pub flagged: i64,
    pub detections: i64,
    pub dead_letters: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_micros: i64,
}

impl std::ops::AddAssign for Truth {
    fn add_assign(&mut self, o: Truth) {
        self.events += o.events;
        self.flagged += o.flagged;
        self.detections += o.detections;
        self.dead_letters += o.dead_letters;
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.cost_micros += o.cost_micros;
    }
}

fn corpus(n: usize, partitions: i32, seed: u64) -> (Vec<(i32, Vec<u8>)>, Truth) {
    corpus_from(0, n, partitions, seed)
}

/// `n` events over `partitions`, numbered from `first`: 5 % flaggable (two detections
/// each), 0.5 % malformed, with token counts and costs to check the rollups' sums.
pub fn corpus_from(
    first: usize,
    n: usize,
    partitions: i32,
    seed: u64,
) -> (Vec<(i32, Vec<u8>)>, Truth) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut truth = Truth::default();
    let mut messages = Vec::with_capacity(n);
    for i in first..first + n {
        let partition = rng.random_range(0..partitions);
        let roll = rng.random_range(0..1000);
        if roll < 5 {
            truth.dead_letters += 1;
            messages.push((partition, format!("{{\"id\": \"broken-{i}\"").into_bytes()));
            continue;
        }
        let flag = roll < 55;
        let (tokens_in, tokens_out, cost_micros) = (
            rng.random_range(1..4000),
            rng.random_range(1..2000),
            rng.random_range(0..50_000),
        );
        truth.events += 1;
        truth.flagged += i64::from(flag);
        truth.detections += if flag { 2 } else { 0 };
        truth.tokens_in += tokens_in;
        truth.tokens_out += tokens_out;
        truth.cost_micros += cost_micros;
        let (provider, model, app) = [
            ("openai", "gpt-4o", "support-bot"),
            ("anthropic", "claude-3-5-sonnet", "ide"),
            ("mistral", "mistral-large", ""),
        ][i % 3];
        let payload = serde_json::json!({
            "id": format!("ev-{i}"),
            "timestamp": 1_795_000_000_000_i64 + i as i64 * 7,
            "src_ip": format!("10.1.{}.{}", i % 250, i % 200),
            "provider": provider,
            "model": model,
            "app": app,
            "prompt": if flag { FLAGGABLE } else { CLEAN },
            "response": "Here is the summary you asked for.",
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost_usd": cost_micros as f64 / 1e6,
        });
        messages.push((partition, payload.to_string().into_bytes()));
    }
    (messages, truth)
}

/// Produces everything, many in flight at once, and waits for every delivery.
async fn produce_all(bootstrap: String, topic: String, messages: Vec<(i32, Vec<u8>)>) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.timeout.ms", "120000")
        .set("linger.ms", "5")
        .create()
        .expect("create producer");
    for chunk in messages.chunks(500) {
        send_all(&producer, &topic, chunk).await;
    }
}

/// Sends the messages all at once and waits for every delivery.
pub async fn send_all(producer: &FutureProducer, topic: &str, messages: &[(i32, Vec<u8>)]) {
    let deliveries: Vec<_> = messages
        .iter()
        .map(|(partition, payload)| {
            producer.send(
                FutureRecord::<(), [u8]>::to(topic)
                    .partition(*partition)
                    .payload(payload),
                Duration::from_secs(120),
            )
        })
        .collect();
    for delivery in deliveries {
        delivery.await.map_err(|(e, _)| e).expect("deliver message");
    }
}

async fn stored(pool: &PgPool) -> Truth {
    let (events, flagged, tokens_in, tokens_out, cost_micros): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT coalesce(sum(events), 0)::bigint, coalesce(sum(flagged), 0)::bigint,
                coalesce(sum(tokens_in), 0)::bigint, coalesce(sum(tokens_out), 0)::bigint,
                coalesce(sum(cost_micros), 0)::bigint
         FROM traffic_rollups",
        )
        .fetch_one(pool)
        .await
        .expect("rollup sums");
    Truth {
        events,
        flagged,
        tokens_in,
        tokens_out,
        cost_micros,
        detections: support::count(pool, "detections").await,
        dead_letters: support::count(pool, "dead_letters").await,
    }
}

/// Messages accounted for so far (events counted plus dead letters); None while the
/// database is unreachable.
async fn progress(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT (SELECT coalesce(sum(events), 0) FROM traffic_rollups)::bigint
              + (SELECT count(*) FROM dead_letters)",
    )
    .fetch_one(pool)
    .await
    .ok()
}

pub async fn wait_for_progress(pool: &PgPool, at_least: i64) {
    support::eventually(WITHIN, &format!("{at_least} messages stored"), || async {
        progress(pool).await.filter(|&p| p >= at_least)
    })
    .await;
}

/// Waits until every message is accounted for, then checks every table exactly.
pub async fn assert_matches(pool: &PgPool, truth: Truth) {
    wait_for_progress(pool, truth.events + truth.dead_letters).await;
    assert_eq!(stored(pool).await, truth);
    let (flags, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM flags")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!((flags, distinct), (truth.flagged, truth.flagged));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_killed_with_sigkill_lose_and_duplicate_nothing() {
    let topic = unique("crash");
    let (_broker, bootstrap) = start_tansu(&topic, 4).await;
    let db = support::fresh_database().await;
    let seed: u64 = rand::rng().random();
    eprintln!("corpus seed {seed}");
    let (messages, truth) = corpus(50_000, 4, seed);
    let total = truth.events + truth.dead_letters;
    let producing = tokio::spawn(produce_all(bootstrap.clone(), topic.clone(), messages));

    let mut rng = StdRng::seed_from_u64(seed);
    let mut consumer = start_consumer(&db.url, &bootstrap, &topic, "crash", None);
    for kill in 0..5 {
        // A random point within the next sixth of the stream.
        let step = total / 6;
        let at = step * kill + rng.random_range(1..step);
        wait_for_progress(&db.pool, at).await;
        consumer.kill();
        eprintln!("killed the consumer after {at} messages");
        consumer = start_consumer(&db.url, &bootstrap, &topic, "crash", None);
    }
    producing.await.expect("producer");
    assert_matches(&db.pool, truth).await;
    drop(consumer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_member_killed_mid_stream_hands_over_without_loss_or_duplicates() {
    let topic = unique("pair");
    let (_broker, bootstrap) = start_tansu(&topic, 4).await;
    let db = support::fresh_database().await;
    let (messages, truth) = corpus(20_000, 4, 7);
    let a = start_consumer(&db.url, &bootstrap, &topic, "pair", None);
    let b = start_consumer(&db.url, &bootstrap, &topic, "pair", None);
    let producing = tokio::spawn(produce_all(bootstrap.clone(), topic.clone(), messages));
    wait_for_progress(&db.pool, (truth.events + truth.dead_letters) / 3).await;
    a.kill();
    producing.await.expect("producer");
    assert_matches(&db.pool, truth).await;
    drop(b);
}

/// A cluster of this test's own, so stopping it does not disturb the other tests.
pub struct PrivateCluster {
    pub dir: String,
}

impl PrivateCluster {
    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg")
    }

    pub fn run(args: &[&str]) {
        let status = Command::new("bash")
            .arg(Self::script())
            .args(args)
            .status()
            .expect("run scripts/pg");
        assert!(status.success(), "scripts/pg {args:?}");
    }

    pub fn init(port: u16) -> PrivateCluster {
        let dir = format!("/tmp/{}", unique("flagstream-pg"));
        Self::run(&["init", &dir, &port.to_string()]);
        PrivateCluster { dir }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .args(["destroy", &self.dir])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_stream_loses_nothing() {
    let topic = unique("pgdown");
    let (_broker, bootstrap) = start_tansu(&topic, 2).await;
    let port = free_port();
    let cluster = PrivateCluster::init(port);
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("connect to the private cluster");
    flagstream_consumer::MIGRATOR
        .run(&pool)
        .await
        .expect("migrate");
    let (messages, truth) = corpus(10_000, 2, 11);
    let metrics_port = free_port();
    let consumer = start_consumer(&url, &bootstrap, &topic, "pgdown", Some(metrics_port));
    let producing = tokio::spawn(produce_all(bootstrap.clone(), topic.clone(), messages));
    wait_for_progress(&pool, (truth.events + truth.dead_letters) / 4).await;

    PrivateCluster::run(&["stop", &cluster.dir]);
    // The consumer notices: its writes fail and are retried.
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    support::eventually(WITHIN, "a failed database write", || async {
        let body = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        body.contains("flagstream_errors_total{kind=\"database\"}")
            .then_some(())
    })
    .await;
    PrivateCluster::run(&["start", &cluster.dir]);

    producing.await.expect("producer");
    assert_matches(&pool, truth).await;
    drop(consumer);
}
