//! Backtests against the tansu broker with real topics and PostgreSQL: exact counts over a
//! timestamp range, new and lost flags against the active set, nothing written to live
//! tables or offsets, resumption after a worker is killed, cancel, the rate cap, and a
//! range the topic no longer holds.

use std::time::Duration;

use flagstream_consumer::backtest::{self, Settings};
use flagstream_consumer::Config;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::procs::start_tansu;
use crate::support::{self, committed, config, count, eventually, unique};

const WITHIN: Duration = Duration::from_secs(90);
/// 2026-12-01T00:00:00Z: the backtested range is the hour after it.
const T0: i64 = 1_796_083_200_000;
const HOUR: i64 = 3_600_000;

fn settings(config: &Config, max_rate: u32) -> Settings {
    Settings {
        max_rate,
        lease: Duration::from_secs(2),
        poll: Duration::from_millis(100),
        ..Settings::from_config(config)
    }
}

fn rule(id: &str, keyword: &str) -> Value {
    json!({"id": id, "name": id, "severity": "high", "points": 50, "kind": "keyword",
           "keywords": [keyword]})
}

/// The active set: one rule, `acme.birds`, looking for "falcon".
async fn activate(pool: &PgPool) {
    sqlx::query("INSERT INTO rules (id, definition, updated_by) VALUES ($1, $2, 'test')")
        .bind("acme.birds")
        .bind(rule("acme.birds", "falcon"))
        .execute(pool)
        .await
        .unwrap();
}

/// A draft that redefines `acme.birds` to look for "osprey" instead.
fn osprey_draft() -> Value {
    json!({"rules": [rule("acme.birds", "osprey")], "replaces": []})
}

async fn queue(pool: &PgPool, range: (Option<i64>, Option<i64>), last: Option<i64>) -> i64 {
    let at = |ms: Option<i64>| ms.map(time_of);
    sqlx::query_scalar(
        "INSERT INTO backtests (created_by, draft, range_from, range_to, last_events)
         VALUES ('test', $1, $2, $3, $4) RETURNING id",
    )
    .bind(osprey_draft())
    .bind(at(range.0))
    .bind(at(range.1))
    .bind(last)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn time_of(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
}

/// Produces `(partition, kafka timestamp, payload)` and waits for every delivery.
async fn produce(producer: &FutureProducer, topic: &str, messages: &[(i32, i64, Vec<u8>)]) {
    for (partition, ms, payload) in messages {
        let record = FutureRecord::<(), [u8]>::to(topic)
            .partition(*partition)
            .timestamp(*ms)
            .payload(payload.as_slice());
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("deliver message");
    }
}

async fn job(pool: &PgPool, id: i64) -> (String, i64, i32, Option<Value>) {
    sqlx::query_as("SELECT status, scanned, attempts, result FROM backtests WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_for_status(pool: &PgPool, id: i64, status: &str) -> Value {
    eventually(WITHIN, &format!("backtest {id} {status}"), || async {
        let (s, _, _, result) = job(pool, id).await;
        (s == status).then(|| result.unwrap_or(Value::Null))
    })
    .await
}

/// A backtest worker task, as a consumer runs it.
struct Worker {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn start(pool: &PgPool, config: &Config, settings: Settings, name: &str) -> Worker {
        let stop = CancellationToken::new();
        let task = tokio::spawn(backtest::run(
            pool.clone(),
            config.clone(),
            settings,
            name.to_owned(),
            stop.clone(),
        ));
        Worker { stop, task }
    }

    /// Stops it as a shutdown does, and waits until it has.
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }

    /// Ends it without a word, as a killed process does.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_counts_exactly_the_range_and_leaves_live_flags_and_offsets_alone() {
    let db = support::fresh_database().await;
    activate(&db.pool).await;
    let (topic, group) = (unique("events"), unique("live"));
    let (_broker, bootstrap) = start_tansu(&topic, 3).await;
    // In the hour: 6 osprey-only (new flags), 4 falcon-only (lost flags), 2 both, 9 clean,
    // 1 unreadable. Before and after it: the same words again, which must not count.
    let mut messages = Vec::new();
    let mut n = 0;
    let mut add = |ms: i64, payload: Option<&str>| {
        n += 1;
        let bytes = match payload {
            Some(prompt) => support::event(&format!("ev-{n}"), prompt),
            None => b"{not json".to_vec(),
        };
        // Every partition gets messages before, in and after the hour, in time order.
        messages.push((n % 3, ms, bytes));
    };
    for prompt in ["the osprey dives", "a falcon", "quarterly numbers"] {
        add(T0 - HOUR, Some(prompt));
    }
    let in_hour = std::iter::repeat_n(Some("the osprey dives"), 6)
        .chain(std::iter::repeat_n(Some("a falcon"), 4))
        .chain(std::iter::repeat_n(Some("falcon meets osprey"), 2))
        .chain(std::iter::repeat_n(Some("quarterly numbers"), 9))
        .chain([None]);
    for (i, payload) in in_hour.enumerate() {
        add(T0 + 1_000 * (i as i64 + 1), payload);
    }
    for prompt in ["the osprey dives", "a falcon"] {
        add(T0 + 2 * HOUR, Some(prompt));
    }
    let producer = support::producer(&bootstrap);
    produce(&producer, &topic, &messages).await;
    let total = messages.len() as i64;

    // The live consumer runs alongside, with the backtest worker in the same process.
    let config = config(&db.url, &bootstrap, &topic, &group);
    let shutdown = CancellationToken::new();
    let live = tokio::spawn(flagstream_consumer::run(
        config.clone(),
        shutdown.clone(),
        None,
    ));
    let hour = queue(&db.pool, (Some(T0), Some(T0 + HOUR)), None).await;
    let day = queue(&db.pool, (Some(T0 - 24 * HOUR), Some(T0 + HOUR)), None).await;
    let last = queue(&db.pool, (None, None), Some(5)).await;

    let result = wait_for_status(&db.pool, hour, "done").await;
    let counts: Vec<u64> = [
        "events",
        "unreadable",
        "matching_events",
        "would_flag",
        "active_flags",
        "new_flags",
        "lost_flags",
    ]
    .iter()
    .map(|k| {
        result[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {result}"))
    })
    .collect();
    assert_eq!(counts, [21, 1, 8, 8, 6, 6, 4], "{result}");
    assert_eq!(result["by_rule"]["acme.birds"], 8);
    assert_eq!(result["by_model"]["gpt-4o"], 8);
    assert_eq!(result["new_flag_samples"].as_array().unwrap().len(), 6);
    let excerpt = result["samples"][0]["detections"][0]["excerpt"]
        .as_str()
        .unwrap();
    assert!(
        !excerpt.contains("osprey"),
        "samples are redacted: {excerpt}"
    );
    assert_eq!(result["coverage"]["complete"], true, "{result}");
    assert!(result["cost"]["draft_ns_per_event"].as_f64().unwrap() > 0.0);

    // A range that starts before anything the topic holds says so.
    let result = wait_for_status(&db.pool, day, "done").await;
    assert_eq!(
        (result["events"].as_u64(), result["unreadable"].as_u64()),
        (Some(24), Some(1)),
        "{result}"
    );
    assert_eq!(result["coverage"]["complete"], false, "{result}");
    assert_eq!(
        result["coverage"]["available_from"], "2026-11-30T23:00:00Z",
        "{result}"
    );
    let result = wait_for_status(&db.pool, last, "done").await;
    assert_eq!(
        result["events"].as_u64().unwrap() + result["unreadable"].as_u64().unwrap(),
        5,
        "{result}"
    );

    // The live consumer stored what the active set flags in the whole topic (4 + 2 in the
    // hour, 2 outside it) and nothing of the backtests; its offsets are its own.
    eventually(WITHIN, "live consumer at the end", || async {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT sum(next_offset)::bigint FROM consumer_offsets")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        (next == Some(total)).then_some(())
    })
    .await;
    assert_eq!(count(&db.pool, "flags").await, 8);
    let groups: Vec<String> = sqlx::query_scalar("SELECT DISTINCT group_id FROM consumer_offsets")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(groups, std::slice::from_ref(&group));
    shutdown.cancel();
    live.await.unwrap().unwrap();
    let kafka: i64 = committed(&bootstrap, &group, &topic, 3).await.iter().sum();
    assert_eq!(kafka, total);
    let replayed = backtest::backtest_group(&group);
    assert_eq!(
        committed(&bootstrap, &replayed, &topic, 3).await,
        [-1, -1, -1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_resumed_without_double_counting_and_cancel_and_the_rate_cap_hold() {
    let db = support::fresh_database().await;
    activate(&db.pool).await;
    let topic = unique("events");
    let (_broker, bootstrap) = start_tansu(&topic, 2).await;
    // 600 events in the hour, every tenth with the draft's word.
    let messages: Vec<_> = (0..600)
        .map(|i| {
            let prompt = if i % 10 == 0 {
                "osprey"
            } else {
                "nothing to see"
            };
            (
                i % 2,
                T0 + i64::from(i) * 100,
                support::event(&format!("ev-{i}"), prompt),
            )
        })
        .collect();
    produce(&support::producer(&bootstrap), &topic, &messages).await;
    let config = config(&db.url, &bootstrap, &topic, "unused");

    // Killed mid-run: a checkpoint is stored, then the worker is gone without a word.
    let id = queue(&db.pool, (Some(T0), Some(T0 + HOUR)), None).await;
    let a = Worker::start(&db.pool, &config, settings(&config, 150), "worker-a");
    eventually(WITHIN, "a checkpoint", || async {
        let (_, scanned, _, _) = job(&db.pool, id).await;
        (scanned > 0).then_some(())
    })
    .await;
    a.kill().await;
    let (status, scanned, _, _) = job(&db.pool, id).await;
    assert_eq!(status, "running");
    assert!(scanned < 600, "killed before the end: {scanned}");
    // The next worker takes the job over once the lease runs out, and resumes.
    let b = Worker::start(&db.pool, &config, settings(&config, 100_000), "worker-b");
    let result = wait_for_status(&db.pool, id, "done").await;
    assert_eq!(
        (
            result["events"].as_u64(),
            result["matching_events"].as_u64()
        ),
        (Some(600), Some(60)),
        "{result}"
    );
    let (_, scanned, attempts, _) = job(&db.pool, id).await;
    assert_eq!((scanned, attempts), (600, 2));
    b.stop().await;

    // The rate cap: 600 events at 300/s take at least two seconds.
    let c = Worker::start(&db.pool, &config, settings(&config, 300), "worker-c");
    let capped = queue(&db.pool, (Some(T0), Some(T0 + HOUR)), None).await;
    wait_for_status(&db.pool, capped, "done").await;
    let seconds: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM finished_at - started_at)::float8 FROM backtests WHERE id = $1",
    )
    .bind(capped)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(seconds >= 1.9, "600 events at most 300/s took {seconds} s");
    c.stop().await;

    // Cancel: the worker stops at its next checkpoint and reports what it scanned.
    let d = Worker::start(&db.pool, &config, settings(&config, 50), "worker-d");
    let slow = queue(&db.pool, (Some(T0), Some(T0 + HOUR)), None).await;
    eventually(WITHIN, "the slow job scanning", || async {
        let (_, scanned, _, _) = job(&db.pool, slow).await;
        (scanned > 0).then_some(())
    })
    .await;
    sqlx::query("UPDATE backtests SET cancel_requested = true WHERE id = $1")
        .bind(slow)
        .execute(&db.pool)
        .await
        .unwrap();
    let result = wait_for_status(&db.pool, slow, "cancelled").await;
    assert!(result["events"].as_u64().unwrap() < 600, "{result}");
    d.stop().await;
    assert_eq!(count(&db.pool, "flags").await, 0);
}
