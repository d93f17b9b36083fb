//! The consumer library against librdkafka's in-process mock cluster and real PostgreSQL.

use std::time::Duration;

use flagstream_consumer::batch::{self, Message, Storage};
use flagstream_consumer::config::StoreContent;
use flagstream_consumer::{sink, Error};
use flagstream_rules::content::Keyring;
use flagstream_rules::{Pack, RuleSet};
use rdkafka::mocking::MockCluster;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::support::{
    self, committed, config, count, event, unique, wait_for_rows, CLEAN, FLAGGABLE,
};

const WITHIN: Duration = Duration::from_secs(60);

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
        None,
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
    // Every parsed event is counted in the rollups, flagged or not.
    wait_for_rollups(&db.pool, (12, 4)).await;
    // Content is sealed with the configured key, bound to its event.
    let (event_id, mode, sealed): (String, String, Vec<u8>) =
        sqlx::query_as("SELECT event_id, content_mode, content FROM flags WHERE event_id = 'ev-3'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(mode, "encrypted");
    let keys = Keyring::from_config(Some(support::TEST_KEY), None)
        .unwrap()
        .unwrap();
    let opened: serde_json::Value =
        serde_json::from_slice(&keys.open(&event_id, &sealed).unwrap()).unwrap();
    assert_eq!(opened["prompt"], FLAGGABLE);
    assert!(
        keys.open("ev-0", &sealed).is_err(),
        "sealed content is bound to its event"
    );

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
        None,
    ));
    wait_for_rows(&db.pool, "flags", 5, WITHIN).await;
    shutdown.cancel();
    run.await.expect("join").expect("consumer ends cleanly");
    assert_eq!(count(&db.pool, "flags").await, 5);
    assert_eq!(count(&db.pool, "dead_letters").await, 3);
    assert_eq!(count(&db.pool, "detections").await, 10);
    wait_for_rollups(&db.pool, (13, 5)).await;
}

async fn wait_for_rollups(pool: &sqlx::PgPool, expected: (i64, i64)) {
    support::eventually(WITHIN, &format!("rollups {expected:?}"), || async {
        (rollup_events(pool).await == expected).then_some(())
    })
    .await;
}

fn message(offset: i64, payload: &[u8]) -> Message {
    Message {
        topic: "t".into(),
        partition: 0,
        offset,
        payload: Some(payload.to_vec()),
        oversized: None,
    }
}

async fn rollup_events(pool: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT coalesce(sum(events), 0)::bigint, coalesce(sum(flagged), 0)::bigint FROM traffic_rollups")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_batch_writes_nothing_twice_not_even_rollups() {
    let db = support::fresh_database().await;
    let rules = RuleSet::build(Pack::builtin("default").unwrap().rules).unwrap();
    let storage = Storage {
        mode: StoreContent::Redacted,
        keys: None,
        dead_letter_max_bytes: 1024,
    };
    let first = vec![
        message(0, &event("a", FLAGGABLE)),
        message(1, b"garbage"),
        message(2, &event("b", CLEAN)),
    ];
    let batch = batch::evaluate(&rules, first.clone(), &storage).unwrap();
    let stored = sink::store_batch(&db.pool, "g", &batch).await.unwrap();
    assert_eq!(
        (
            stored.flags,
            stored.detections,
            stored.dead_letters,
            stored.events,
            stored.replayed
        ),
        (1, 2, 1, 2, 0)
    );

    // The same batch again, as after a crash between the commit and Kafka's.
    let again = sink::store_batch(&db.pool, "g", &batch).await.unwrap();
    assert_eq!(
        again,
        sink::Stored {
            replayed: 3,
            ..Default::default()
        }
    );

    // A batch straddling the stored offset: only the new message counts.
    let mut overlapping = first[1..].to_vec();
    overlapping.push(message(3, &event("c", FLAGGABLE)));
    let batch = batch::evaluate(&rules, overlapping, &storage).unwrap();
    let stored = sink::store_batch(&db.pool, "g", &batch).await.unwrap();
    assert_eq!((stored.flags, stored.events, stored.replayed), (1, 1, 2));

    assert_eq!(count(&db.pool, "flags").await, 2);
    assert_eq!(count(&db.pool, "detections").await, 4);
    assert_eq!(count(&db.pool, "dead_letters").await, 1);
    assert_eq!(rollup_events(&db.pool).await, (3, 2));
    let next: i64 =
        sqlx::query_scalar("SELECT next_offset FROM consumer_offsets WHERE group_id = 'g'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(next, 4);
    // Redacted content keeps the text around a detection, never the match.
    let content: Vec<u8> = sqlx::query_scalar("SELECT content FROM flags WHERE event_id = 'a'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let content: serde_json::Value = serde_json::from_slice(&content).unwrap();
    let prompt = content["prompt"].as_str().unwrap();
    assert!(
        prompt.starts_with("Please [") && !prompt.contains("ignore previous"),
        "{prompt}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_hits_are_stored_for_triage_but_never_score_or_alert() {
    let db = support::fresh_database().await;
    let mut rules = Pack::builtin("default").unwrap().rules;
    rules.push(
        serde_json::from_value(serde_json::json!({
            "id": "acme.codename", "name": "Codenames", "severity": "critical", "points": 90,
            "kind": "keyword", "keywords": ["bluebird"], "mode": "shadow"}))
        .unwrap(),
    );
    let rules = RuleSet::build(rules).unwrap();
    let storage = Storage {
        mode: StoreContent::Redacted,
        keys: None,
        dead_letter_max_bytes: 1024,
    };
    let shadow_prompt = "Draft the bluebird launch memo.";
    let both = format!("{FLAGGABLE} Also bluebird.");
    let batch = vec![
        message(0, &event("shadow", shadow_prompt)),
        message(1, &event("both", &both)),
        message(2, &event("clean", CLEAN)),
        message(3, &event("enforce", FLAGGABLE)),
    ];
    let batch = batch::evaluate(&rules, batch, &storage).unwrap();
    let stored = sink::store_batch(&db.pool, "g", &batch).await.unwrap();
    assert_eq!((stored.flags, stored.shadow_only), (2, 1));

    let rows: Vec<(String, bool, i16, String, Vec<String>)> = sqlx::query_as(
        "SELECT event_id, shadow_only, score, severity, categories FROM flags ORDER BY event_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let (id, shadow_only, score, severity, categories) = &rows[2];
    assert_eq!(
        (id.as_str(), *shadow_only, *score, severity.as_str()),
        ("shadow", true, 0, "low")
    );
    assert!(categories.is_empty());
    // The real flag's score and severity come from the enforce rules alone.
    assert_eq!((rows[0].0.as_str(), rows[0].1), ("both", false));
    assert_eq!(rows[1].0, "enforce");
    assert_eq!((rows[0].2, &rows[0].3), (rows[1].2, &rows[1].3));
    // Both carry the shadow rule's hit as evidence; only the real flag is alerted on.
    let hits: Vec<(String, bool)> = sqlx::query_as(
        "SELECT f.event_id, d.shadow FROM detections d JOIN flags f ON f.id = d.flag_id
         WHERE d.rule_id = 'acme.codename' ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(hits, [("both".into(), true), ("shadow".into(), true)]);
    let alerted: Vec<String> = sqlx::query_scalar(
        "SELECT f.event_id FROM alert_outbox o JOIN flags f ON f.id = o.flag_id ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(alerted, ["both", "enforce"]);
    assert_eq!(rollup_events(&db.pool).await, (4, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_start_at_the_offsets_stored_in_postgres() {
    let db = support::fresh_database().await;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let (topic, group) = (unique("events"), unique("group"));
    cluster.create_topic(&topic, 1, 1).expect("create topic");
    let messages: Vec<_> = (0..3)
        .map(|i| (0, Some(event(&format!("ev-{i}"), FLAGGABLE))))
        .collect();
    support::produce(&support::producer(&bootstrap), &topic, &messages).await;
    // As if an earlier run had stored the first two and died before committing to Kafka.
    sqlx::query("INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, 0, 2)")
        .bind(&group)
        .bind(&topic)
        .execute(&db.pool)
        .await
        .unwrap();

    let shutdown = CancellationToken::new();
    let (ready, metrics_addr) = oneshot::channel();
    let run = tokio::spawn(flagstream_consumer::run(
        config(&db.url, &bootstrap, &topic, &group),
        shutdown.clone(),
        Some(ready),
    ));
    let metrics_addr = metrics_addr.await.expect("consumer started");
    wait_for_rows(&db.pool, "flags", 1, WITHIN).await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT event_id FROM flags")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(ids, ["ev-2"]);
    // Nothing was read twice and filtered: the partition started at offset 2.
    let metrics = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("flagstream_events_consumed_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flagstream_events_replayed_total 0\n"),
        "{metrics}"
    );
    shutdown.cancel();
    run.await.expect("join").expect("consumer ends cleanly");
    assert_eq!(committed(&bootstrap, &group, &topic, 1).await, [3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_inserted_with_sql_takes_effect_without_a_restart() {
    let db = support::fresh_database().await;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let (topic, group) = (unique("events"), unique("group"));
    cluster.create_topic(&topic, 1, 1).expect("create topic");
    // Polling is off (an hour), so only the notification can bring the change in.
    let mut config = config(&db.url, &bootstrap, &topic, &group);
    config.rules_poll_secs = 3600;
    let shutdown = CancellationToken::new();
    let (ready, metrics_addr) = oneshot::channel();
    let run = tokio::spawn(flagstream_consumer::run(
        config,
        shutdown.clone(),
        Some(ready),
    ));
    let metrics_addr = metrics_addr.await.expect("consumer started");
    let version = |m: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix("flagstream_rule_set_version "))
            .and_then(|v| v.parse::<i64>().ok())
    };
    let fetch = || async {
        reqwest::get(format!("http://{metrics_addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let seeded = version(&fetch().await).expect("rule set version exported");
    assert!(seeded > 0, "the default pack was seeded");

    let rule = serde_json::json!({
        "id": "acme.codename", "name": "Project codename", "category": "confidential",
        "severity": "critical", "points": 90, "kind": "keyword", "keywords": ["bluefalcon"]
    });
    let changed = std::time::Instant::now();
    sqlx::query("INSERT INTO rules (id, definition) VALUES ('acme.codename', $1)")
        .bind(&rule)
        .execute(&db.pool)
        .await
        .unwrap();
    let expected: i64 = sqlx::query_scalar("SELECT max(seq) FROM rule_versions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    support::eventually(WITHIN, "the new rule set", || async {
        (version(&fetch().await) == Some(expected)).then_some(())
    })
    .await;
    eprintln!("rule change took effect after {:?}", changed.elapsed());

    // A rule that does not compile is skipped and reported; the rest keep working.
    sqlx::query("INSERT INTO rules (id, definition) VALUES ('broken', $1)")
        .bind(serde_json::json!({"id": "broken", "name": "b", "severity": "low", "points": 1, "kind": "regex", "pattern": "("}))
        .execute(&db.pool)
        .await
        .unwrap();
    support::eventually(WITHIN, "the broken rule to be reported", || async {
        let m = fetch().await;
        eprintln!(
            "{}",
            m.lines()
                .filter(|l| l.contains("rule"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        m.contains("flagstream_rules_rejected 1\n").then_some(())
    })
    .await;

    support::produce(
        &support::producer(&bootstrap),
        &topic,
        &[(0, Some(event("cn", "status of bluefalcon?")))],
    )
    .await;
    wait_for_rows(&db.pool, "flags", 1, WITHIN).await;
    let (severity, version_used): (String, i64) =
        sqlx::query_as("SELECT severity, rule_set_version FROM flags")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(severity, "critical");
    assert_eq!(version_used, expected + 1);
    shutdown.cancel();
    run.await.expect("join").expect("consumer ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_content_without_a_key_is_a_start_up_error() {
    let mut config = config("postgres://unused@127.0.0.1:1/x", "127.0.0.1:1", "t", "g");
    config.encryption_key = None;
    let err = flagstream_consumer::run(config, CancellationToken::new(), None)
        .await
        .expect_err("must not start");
    assert!(
        matches!(err, Error::Config(ref m) if m.contains("ENCRYPTION_KEY")),
        "{err}"
    );
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
        None,
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
        None,
    )
    .await
    .expect_err("must not start");
    assert!(matches!(err, Error::Kafka(_)), "{err}");
}
