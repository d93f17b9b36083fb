//! The consumer library against librdkafka's in-process mock cluster and real PostgreSQL.

use std::time::Duration;

use clap::Parser;
use flagstream_consumer::{Config, Error};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::support::{self, count, event, unique, wait_for_rows, CLEAN, FLAGGABLE};

const WITHIN: Duration = Duration::from_secs(60);

fn config(db: &str, bootstrap: &str, topic: &str, group: &str) -> Config {
    Config::try_parse_from([
        "flagstream-consumer",
        "--database-url",
        db,
        "--kafka-bootstrap-servers",
        bootstrap,
        "--kafka-topic",
        topic,
        "--kafka-group-id",
        group,
        "--batch-timeout-ms",
        "50",
        // The mock cluster keeps a departed member until its session times out.
        "--kafka-option",
        "session.timeout.ms=6000,heartbeat.interval.ms=500",
    ])
    .expect("valid config")
}

async fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("create consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let list = tokio::task::spawn_blocking(move || {
        client.committed_offsets(list, Duration::from_secs(10))
    })
    .await
    .expect("join")
    .expect("fetch committed offsets");
    list.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => -1,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_flaggable_events_dead_letters_malformed_ones_and_commits_after_storing() {
    let db = support::fresh_database().await;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let (topic, group) = (unique("events"), unique("group"));
    cluster.create_topic(&topic, 3, 1).expect("create topic");

    let mut messages = Vec::new();
    for i in 0..12 {
        let prompt = if i % 3 == 0 { FLAGGABLE } else { CLEAN };
        messages.push((i % 3, Some(event(&format!("ev-{i}"), prompt))));
    }
    messages.push((0, Some(b"{not json".to_vec())));
    messages.push((
        1,
        Some(
            br#"{"timestamp":"2026-11-22T08:00:00Z","provider":"p","model":"m","prompt":"x"}"#
                .to_vec(),
        ),
    ));
    messages.push((2, None));
    let producer = support::producer(&bootstrap);
    support::produce(&producer, &topic, &messages).await;

    let shutdown = CancellationToken::new();
    let run = tokio::spawn(flagstream_consumer::run(
        config(&db.url, &bootstrap, &topic, &group),
        shutdown.clone(),
    ));
    wait_for_rows(&db.pool, "flags", 4, WITHIN).await;
    wait_for_rows(&db.pool, "dead_letters", 3, WITHIN).await;

    let ids: Vec<String> = sqlx::query_scalar("SELECT event_id FROM flags ORDER BY event_id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(ids, ["ev-0", "ev-3", "ev-6", "ev-9"]);
    let codes: Vec<String> =
        sqlx::query_scalar("SELECT error_code FROM dead_letters ORDER BY kafka_partition")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(codes, ["not_json", "missing_field", "empty"]);
    let raw: Vec<u8> =
        sqlx::query_scalar("SELECT payload FROM dead_letters WHERE kafka_partition = 0")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(raw, b"{not json");
    // Each flag carries its evidence: two injection phrases.
    let detections: i64 = count(&db.pool, "detections").await;
    assert_eq!(detections, 8);

    shutdown.cancel();
    run.await.expect("join").expect("consumer ends cleanly");
    // Every message was stored, so every partition's committed offset is its end.
    assert_eq!(committed(&bootstrap, &group, &topic, 3).await, [5, 5, 5]);

    // A second run of the same group resumes after the committed offsets: only the new
    // event is stored, nothing twice.
    support::produce(&producer, &topic, &[(1, Some(event("ev-new", FLAGGABLE)))]).await;
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(flagstream_consumer::run(
        config(&db.url, &bootstrap, &topic, &group),
        shutdown.clone(),
    ));
    wait_for_rows(&db.pool, "flags", 5, WITHIN).await;
    shutdown.cancel();
    run.await.expect("join").expect("consumer ends cleanly");
    assert_eq!(count(&db.pool, "flags").await, 5);
    assert_eq!(count(&db.pool, "dead_letters").await, 3);
    assert_eq!(count(&db.pool, "detections").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_batch_stores_nothing_twice() {
    let db = support::fresh_database().await;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique("events");
    cluster.create_topic(&topic, 1, 1).expect("create topic");
    let producer = support::producer(&bootstrap);
    support::produce(
        &producer,
        &topic,
        &[
            (0, Some(event("a", FLAGGABLE))),
            (0, Some(b"garbage".to_vec())),
        ],
    )
    .await;

    // Two groups read the same partition: the second replays exactly what the first stored.
    for group in [unique("group"), unique("group")] {
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(flagstream_consumer::run(
            config(&db.url, &bootstrap, &topic, &group),
            shutdown.clone(),
        ));
        support::eventually(WITHIN, "the group to commit its offset", || async {
            (committed(&bootstrap, &group, &topic, 1).await == [2]).then_some(())
        })
        .await;
        shutdown.cancel();
        run.await.expect("join").expect("consumer ends cleanly");
    }
    assert_eq!(count(&db.pool, "flags").await, 1);
    assert_eq!(count(&db.pool, "detections").await, 2);
    assert_eq!(count(&db.pool, "dead_letters").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_a_clear_start_up_error() {
    let db = support::fresh_database().await;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let err = flagstream_consumer::run(
        config(
            &db.url,
            &cluster.bootstrap_servers(),
            "no-such-topic",
            &unique("group"),
        ),
        CancellationToken::new(),
    )
    .await
    .expect_err("must not start");
    assert!(
        matches!(err, Error::MissingTopic(ref t) if t == "no-such-topic"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_a_start_up_error_not_a_hang() {
    let db = support::fresh_database().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = flagstream_consumer::run(
        config(&db.url, &closed.to_string(), "events", &unique("group")),
        CancellationToken::new(),
    )
    .await
    .expect_err("must not start");
    assert!(matches!(err, Error::Kafka(_)), "{err}");
}
