//! Poison messages against the consumer binary, the tansu broker and real PostgreSQL: each is
//! dead-lettered with its reason or stored in a form PostgreSQL accepts, none stops the
//! consumer or blocks its partition, the valid events after them are stored, and the
//! consumer's memory stays bounded.
//!
//! Tansu rather than librdkafka's mock cluster: the mock keeps about 5 MB per partition,
//! dropping the oldest messages as more arrive, and stalls on a 10 MB message.

use std::collections::BTreeMap;
use std::time::Duration;

use flagstream_rules::content::Keyring;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::procs::{free_port, start_consumer, start_tansu, wait_for_port};
use crate::support::{self, committed, count, unique, wait_for_rows, CLEAN, FLAGGABLE};

const WITHIN: Duration = Duration::from_secs(90);
/// The consumer's default `DEAD_LETTER_MAX_BYTES`.
const KEPT: usize = 65536;
const APP: &str = "poison-app";
/// Most the consumer may hold at its peak (VmHWM) over the whole test, 10 MB message
/// included: see "Consumer memory" in the README for what bounds it.
const PEAK_RSS_MIB: u64 = 256;

/// A valid event of the rollup row the huge numbers land in; `extra` overrides its fields.
fn event(id: &str, extra: Value) -> Vec<u8> {
    let mut event = json!({
        "id": id,
        "timestamp": "2026-11-22T08:00:00Z",
        "src_ip": "10.20.30.40",
        "provider": "openai",
        "model": "gpt-4o",
        "app": APP,
        "prompt": CLEAN,
    });
    for (k, v) in extra.as_object().expect("an object") {
        event[k] = v.clone();
    }
    event.to_string().into_bytes()
}

/// A poison message: its name, its value (`None`: a tombstone) and the dead-letter reason it
/// must get (`None`: stored as an event).
type Case = (&'static str, Option<Vec<u8>>, Option<&'static str>);

/// Every kind of poison, in the order produced.
fn poison() -> Vec<Case> {
    let deep = 1_000_000;
    let huge_prompt = "x".repeat(10 << 20);
    let with_raw = |bytes: &[u8]| {
        let mut m = br#"{"timestamp":"2026-11-22T08:00:00Z","src_ip":"10.20.30.40","provider":"openai","model":"gpt-4o","prompt":"a"#.to_vec();
        m.extend_from_slice(bytes);
        m.extend_from_slice(br#"b"}"#);
        m
    };
    let head = r#"{"timestamp":"2026-11-22T08:00:00Z","src_ip":"10.20.30.40","provider":"openai","model":"gpt-4o""#;
    vec![
        (
            "10 MiB event",
            Some(event("big", json!({ "prompt": huge_prompt }))),
            Some("too_large"),
        ),
        (
            "1 000 000-deep array in a field",
            Some(
                format!(
                    r#"{head},"prompt":"x","x":{}1{}}}"#,
                    "[".repeat(deep),
                    "]".repeat(deep)
                )
                .into_bytes(),
            ),
            Some("too_deep"),
        ),
        (
            // Objects and arrays by turns: 3.5 MB, under MAX_EVENT_BYTES.
            "1 000 000-deep objects in a field",
            Some(
                format!(
                    r#"{head},"prompt":"x","x":{}1{}}}"#,
                    r#"{"":["#.repeat(deep / 2),
                    "]}".repeat(deep / 2)
                )
                .into_bytes(),
            ),
            Some("too_deep"),
        ),
        (
            "1 000 000-deep top-level array",
            Some(format!("{}1{}", "[".repeat(deep), "]".repeat(deep)).into_bytes()),
            Some("not_object"),
        ),
        ("raw NUL byte", Some(with_raw(b"\0")), Some("not_json")),
        (
            "escaped NULs in stored fields",
            Some(event(
                "nul\u{0}id",
                json!({
                    "prompt": format!("{FLAGGABLE}\u{0}"),
                    "user": "ana\u{0}",
                    "team": "\u{0}",
                    "app": "nul\u{0}app",
                    "endpoint": "/v1\u{0}",
                }),
            )),
            None,
        ),
        ("invalid UTF-8", Some(with_raw(b"\xff\xfe")), Some("not_utf8")),
        (
            "duplicate top-level key",
            Some(format!(r#"{head},"prompt":"{FLAGGABLE}","prompt":"{CLEAN}"}}"#).into_bytes()),
            Some("duplicate_key"),
        ),
        (
            "duplicate nested key",
            Some(
                format!(
                    r#"{head},"messages":[{{"role":"user","content":"{FLAGGABLE}","content":"{CLEAN}"}}]}}"#
                )
                .into_bytes(),
            ),
            Some("duplicate_key"),
        ),
        (
            "number beyond f64",
            Some(format!(r#"{head},"prompt":"x","tokens_in":1e400}}"#).into_bytes()),
            Some("not_json"),
        ),
        (
            "u64::MAX tokens",
            Some(event(
                "max-tokens",
                json!({ "tokens_in": u64::MAX, "tokens_out": u64::MAX }),
            )),
            None,
        ),
        (
            "1e300 dollars",
            Some(event("rich", json!({ "cost_usd": 1e300 }))),
            None,
        ),
        (
            "negative cost",
            Some(event("refund", json!({ "cost_usd": -1 }))),
            None,
        ),
        (
            "timestamp with no UTC form",
            Some(event(
                "y10k",
                json!({ "timestamp": "9999-12-31T23:30:00-01:00" }),
            )),
            Some("invalid_timestamp"),
        ),
        (
            "timestamp before PostgreSQL's range",
            Some(event("bc", json!({ "timestamp": "-5000-01-01T00:00:00" }))),
            Some("invalid_timestamp"),
        ),
        (
            "epoch 1e300",
            Some(event("far", json!({ "timestamp": 1e300 }))),
            Some("invalid_timestamp"),
        ),
        (
            "duration beyond u64",
            Some(event("slow", json!({ "duration_ms": 1e300 }))),
            Some("wrong_type"),
        ),
        ("empty value", Some(Vec::new()), Some("empty")),
        ("tombstone", None, Some("empty")),
    ]
}

fn big_producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000")
        .set("message.max.bytes", (16 << 20).to_string())
        .create()
        .expect("create producer")
}

/// (events, tokens_in, tokens_out, cost_micros) of the row the huge numbers land in.
async fn rollup(pool: &PgPool) -> Option<(i64, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT events, tokens_in, tokens_out, cost_micros FROM traffic_rollups WHERE app = $1",
    )
    .bind(APP)
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// The next offset PostgreSQL holds for the group's partition 0.
async fn stored_next(pool: &PgPool, group: &str, topic: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = 0",
    )
    .bind(group)
    .bind(topic)
    .fetch_optional(pool)
    .await
    .unwrap()
    .unwrap_or(0)
}

/// A process's peak and current resident set, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {status}"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_with_a_reason_and_block_nothing() {
    let db = support::fresh_database().await;
    let (topic, group) = (unique("poison"), unique("group"));
    // One partition: a message that blocked it would hold back every message after it.
    let (_broker, bootstrap) = start_tansu(&topic, 1).await;
    let producer = big_producer(&bootstrap);
    let metrics_port = free_port();
    let mut consumer = start_consumer(&db.url, &bootstrap, &topic, &group, Some(metrics_port));
    wait_for_port(metrics_port).await;

    // A stored rollup row first, so the huge token counts and cost are added to it in SQL.
    let before = event(
        "before",
        json!({ "tokens_in": 10, "tokens_out": 5, "cost_usd": 0.5 }),
    );
    support::produce(&producer, &topic, &[(0, Some(before))]).await;
    support::eventually(WITHIN, "the first event's rollup", || async {
        rollup(&db.pool).await.filter(|r| r.0 == 1)
    })
    .await;
    let (rss_idle, _) = rss_kib(consumer.id());

    let poison = poison();
    let big = poison[0].1.clone().expect("the large message");
    let mut messages: Vec<(i32, Option<Vec<u8>>)> =
        poison.iter().map(|(_, m, _)| (0, m.clone())).collect();
    messages.push((0, Some(support::event("after-0", FLAGGABLE))));
    messages.push((0, Some(support::event("after-1", CLEAN))));
    messages.push((0, Some(support::event("after-2", CLEAN))));
    support::produce(&producer, &topic, &messages).await;
    let end = 1 + messages.len() as i64;

    let expected: BTreeMap<i64, &str> = poison
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, code))| code.map(|c| (1 + i as i64, c)))
        .collect();
    wait_for_rows(&db.pool, "dead_letters", expected.len() as i64, WITHIN).await;
    let stored: BTreeMap<i64, String> =
        sqlx::query_as::<_, (i64, String)>("SELECT kafka_offset, error_code FROM dead_letters")
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for (offset, code) in &expected {
        let name = poison[*offset as usize - 1].0;
        assert_eq!(
            stored.get(offset).map(String::as_str),
            Some(*code),
            "{name}"
        );
    }
    assert_eq!(stored.len(), expected.len(), "{stored:?}");

    // The oversized message: its size, and only its first bytes.
    let (payload, size, error): (Vec<u8>, i32, String) = sqlx::query_as(
        "SELECT payload, payload_size, error FROM dead_letters WHERE error_code = 'too_large'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(size as usize, big.len());
    assert_eq!(payload, big[..KEPT]);
    assert!(error.contains(&big.len().to_string()), "{error}");
    // A repeated key is named.
    let error: String = sqlx::query_scalar(
        "SELECT error FROM dead_letters WHERE error_code = 'duplicate_key' ORDER BY kafka_offset LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(error.contains(r#""prompt""#), "{error}");
    // Raw bytes are kept as sent, NULs and invalid UTF-8 included.
    let raw: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM dead_letters WHERE error_code IN ('not_utf8', 'empty') ORDER BY kafka_offset",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(raw.len(), 3);
    assert!(raw[0].windows(2).any(|w| w == b"\xff\xfe"));
    assert!(raw[1].is_empty() && raw[2].is_empty());

    // The events after the poison are stored: nothing blocked the partition.
    wait_for_rows(&db.pool, "flags", 2, WITHIN).await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT event_id FROM flags ORDER BY kafka_offset")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(ids, ["nul\u{2400}id", "after-0"]);
    support::eventually(WITHIN, "every stored event in the rollups", || async {
        let events: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(events), 0)::bigint FROM traffic_rollups")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        // before, NULs, u64::MAX tokens, 1e300 dollars, negative cost, three after.
        (events == 8).then_some(())
    })
    .await;

    // NULs are shown as ␀ in text columns; the sealed content keeps them, bound to the
    // stored id.
    let (user, team, app, endpoint, sealed): (String, String, String, String, Vec<u8>) =
        sqlx::query_as(
            "SELECT user_id, team, app, endpoint, content FROM flags WHERE kafka_offset = 6",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        (
            user.as_str(),
            team.as_str(),
            app.as_str(),
            endpoint.as_str()
        ),
        ("ana\u{2400}", "\u{2400}", "nul\u{2400}app", "/v1\u{2400}")
    );
    let keys = Keyring::from_config(Some(support::TEST_KEY), None)
        .unwrap()
        .unwrap();
    let opened: Value =
        serde_json::from_slice(&keys.open("nul\u{2400}id", &sealed).unwrap()).unwrap();
    assert_eq!(opened["prompt"], format!("{FLAGGABLE}\u{0}"));
    let nul_rollup: i64 =
        sqlx::query_scalar("SELECT events FROM traffic_rollups WHERE app = 'nul\u{2400}app'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(nul_rollup, 1);

    // Huge numbers saturate the sums instead of failing the batch; a negative cost counts 0.
    assert_eq!(
        rollup(&db.pool).await,
        Some((4, i64::MAX, i64::MAX, i64::MAX))
    );

    // Offsets advanced past everything, in PostgreSQL and (for lag tools) in Kafka.
    assert_eq!(stored_next(&db.pool, &group, &topic).await, end);
    support::eventually(WITHIN, "Kafka's committed offset at the end", || async {
        (committed(&bootstrap, &group, &topic, 1).await == [end]).then_some(())
    })
    .await;

    // Still consuming: the metrics count every reason, and a new event is stored.
    assert!(
        consumer.is_running(),
        "the consumer exited:\n{}",
        consumer.log()
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut by_reason: BTreeMap<&str, u32> = BTreeMap::new();
    for code in expected.values() {
        *by_reason.entry(code).or_default() += 1;
    }
    for (reason, n) in by_reason {
        let line = format!("flagstream_dead_letters_total{{reason=\"{reason}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line}{metrics}");
    }
    support::produce(
        &producer,
        &topic,
        &[(0, Some(support::event("later", FLAGGABLE)))],
    )
    .await;
    wait_for_rows(&db.pool, "flags", 3, WITHIN).await;

    let (peak, now) = rss_kib(consumer.id());
    eprintln!(
        "consumer RSS: {} MiB idle before the poison set, peak {} MiB, {} MiB after",
        rss_idle / 1024,
        peak / 1024,
        now / 1024
    );
    assert!(peak / 1024 < PEAK_RSS_MIB, "peak RSS {} MiB", peak / 1024);

    assert!(consumer.terminate().await.success(), "clean shutdown");
    assert_eq!(count(&db.pool, "dead_letters").await, expected.len() as i64);
}
