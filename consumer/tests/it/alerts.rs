//! Alerting against real PostgreSQL, real HTTP receivers on 127.0.0.1 and a real
//! Alertmanager: the dispatcher runs in-process on flags written as the consumer writes
//! them (flag, detections, outbox row in one transaction); the end-to-end tests at the end
//! run the consumer binary against tansu.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use flagstream_consumer::alerts::{self, Settings};
use flagstream_consumer::metrics::Metrics;
use flagstream_rules::alert::{signature, DestinationSecret};
use flagstream_rules::content::Keyring;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::procs::{binary, free_port, start_tansu, wait_for_port, Process};
use crate::support::{self, eventually, TestDb, TEST_KEY};

const WITHIN: Duration = Duration::from_secs(60);
const SIGNING_SECRET: &str = "whsec-test-0123456789abcdef";
/// Planted in the prompt that made the flag; no message may carry it.
const PLANTED: &str = "AKIAIOSFODNN7EXAMPLE";

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// An HTTP receiver on 127.0.0.1 that records every POST and answers the given statuses in
/// turn (then 200).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> (Receiver, SocketAddr) {
        let receiver = Receiver {
            answers: Arc::new(Mutex::new(answers.iter().rev().copied().collect())),
            ..Receiver::default()
        };
        let app = Router::new()
            .route("/{*path}", post(take))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, address)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(WITHIN, &format!("{n} requests"), || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

async fn take(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.got.lock().unwrap().push(Received { headers, body });
    let answer = r.answers.lock().unwrap().pop().unwrap_or(200);
    StatusCode::from_u16(answer).unwrap()
}

fn keys() -> Keyring {
    Keyring::from_config(Some(TEST_KEY), None).unwrap().unwrap()
}

async fn add_destination(pool: &PgPool, id: &str, kind: &str, url: &str, per_minute: i32) {
    let secret = DestinationSecret {
        url: url.to_owned(),
        signing_secret: Some(SIGNING_SECRET.to_owned()),
    };
    sqlx::query(
        "INSERT INTO alert_destinations (id, kind, display_url, sealed, max_per_minute)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(kind)
    .bind(secret.display_url())
    .bind(secret.seal(&keys(), id).unwrap())
    .bind(per_minute)
    .execute(pool)
    .await
    .unwrap();
}

/// A fresh database with one destination pointing at a new receiver on `path`, which
/// answers `answers` first.
async fn with_destination(
    answers: &[u16],
    id: &str,
    kind: &str,
    path: &str,
    per_minute: i32,
) -> (TestDb, Receiver, SocketAddr) {
    let db = support::fresh_database().await;
    let (receiver, address) = Receiver::start(answers).await;
    add_destination(
        &db.pool,
        id,
        kind,
        &format!("http://{address}{path}"),
        per_minute,
    )
    .await;
    (db, receiver, address)
}

async fn add_route(pool: &PgPool, position: i32, definition: Value) {
    sqlx::query("INSERT INTO alert_routes (id, position, definition) VALUES ($1, $2, $3)")
        .bind(definition["id"].as_str().unwrap())
        .bind(position)
        .bind(&definition)
        .execute(pool)
        .await
        .unwrap();
}

/// Stores a flag as the consumer's batch transaction does: the flag, its detection and
/// its outbox row, committed together.
async fn add_flag(pool: &PgPool, src_ip: &str, rule: &str) -> i64 {
    let mut tx = pool.begin().await.unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO flags (event_id, event_time, src_ip, provider, model, score, severity,
                            categories, kafka_topic, kafka_partition, kafka_offset, user_id)
         VALUES (gen_random_uuid()::text, now(), $1::inet, 'openai', 'gpt-4o', 90, 'critical',
                 ARRAY['secrets'], 't', 0, nextval('flags_id_seq'), 'alice')
         RETURNING id",
    )
    .bind(src_ip)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO detections (flag_id, rule_id, rule_version, field, span_start, span_end, excerpt)
         VALUES ($1, $2, 2, 'prompt', 10, 30, 'my key is AK******************')",
    )
    .bind(id)
    .bind(rule)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO alert_outbox (flag_id) VALUES ($1)")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

fn settings() -> Settings {
    Settings {
        api_base_url: Some("https://flagstream.example.com".into()),
        max_attempts: 5,
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_secs(2),
        http_timeout: Duration::from_secs(5),
        poll: Duration::from_millis(20),
    }
}

/// A dispatcher in this process, stopped when the returned token is dropped.
fn dispatch(pool: &PgPool, metrics: &Arc<Metrics>) -> tokio_util::sync::DropGuard {
    let stop = CancellationToken::new();
    tokio::spawn(alerts::run(
        pool.clone(),
        Some(Arc::new(keys())),
        settings(),
        Arc::clone(metrics),
        stop.clone(),
    ));
    stop.drop_guard()
}

async fn deliveries(pool: &PgPool) -> Vec<(String, String, i32, Vec<i64>, i64)> {
    sqlx::query_as(
        "SELECT key, status, attempts, flag_ids, suppressed FROM alert_deliveries ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn wait_until_sent(pool: &PgPool, n: i64) {
    eventually(WITHIN, &format!("{n} deliveries sent"), || async {
        let sent: i64 =
            sqlx::query_scalar("SELECT count(*) FROM alert_deliveries WHERE status = 'sent'")
                .fetch_one(pool)
                .await
                .unwrap();
        (sent >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn webhook_alerts_are_signed_keyed_and_carry_evidence_but_no_content() {
    let (db, receiver, _) = with_destination(&[], "hook", "webhook", "/in", 60).await;
    add_route(
        &db.pool,
        1,
        json!({"id": "keys", "destinations": ["hook"], "match": {"rules": ["secret.*"]}}),
    )
    .await;
    add_route(
        &db.pool,
        2,
        json!({"id": "other", "destinations": ["hook"], "match": {"rules": ["pii.*"]}}),
    )
    .await;
    let metrics = Arc::new(Metrics::new());
    let _dispatcher = dispatch(&db.pool, &metrics);
    let flag = add_flag(&db.pool, "10.0.0.5", "secret.aws_access_key_id").await;

    let got = receiver.wait_for(1).await;
    let request = &got[0];
    let timestamp: i64 = request.header("x-flagstream-timestamp").parse().unwrap();
    assert_eq!(
        request.header("x-flagstream-signature"),
        signature(SIGNING_SECRET.as_bytes(), timestamp, &request.body),
        "the signature verifies"
    );
    let body = request.json();
    // The receiver has the request before the dispatcher records its answer.
    wait_until_sent(&db.pool, 1).await;
    let (key, status, attempts, flag_ids, _) = deliveries(&db.pool).await.remove(0);
    assert_eq!(request.header("idempotency-key"), key);
    assert_eq!(body["delivery"], key.as_str());
    assert_eq!(
        (status.as_str(), attempts, flag_ids),
        ("sent", 1, vec![flag])
    );
    assert_eq!(body["route"], "keys");
    let sent = &body["flags"][0];
    assert_eq!(sent["id"], flag);
    assert_eq!(
        sent["url"],
        format!("https://flagstream.example.com/api/v1/flags/{flag}")
    );
    assert_eq!(
        sent["rules"],
        json!([{"id": "secret.aws_access_key_id", "version": 2}])
    );
    assert_eq!(sent["severity"], "critical");
    assert_eq!(sent["src_ip"], "10.0.0.5");
    assert_eq!(sent["user"], "alice");
    assert!(!String::from_utf8_lossy(&request.body).contains(PLANTED));
    let latency: Option<i64> = sqlx::query_scalar("SELECT latency_ms FROM alert_deliveries")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(latency.is_some_and(|ms| ms >= 0));
    let exposition = metrics.render();
    assert!(
        exposition.contains(r#"flagstream_alerts_sent_total{kind="webhook"} 1"#),
        "{exposition}"
    );
    // Only one route matched: no second message.
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn groups_wait_then_repeat_intervals_suppress_and_the_count_rides_on_the_next_message() {
    let (db, receiver, _) = with_destination(&[], "hook", "webhook", "/in", 60).await;
    add_route(
        &db.pool,
        1,
        json!({"id": "grouped", "destinations": ["hook"], "group_by": ["rule", "src_ip"],
               "group_wait_secs": 1, "repeat_interval_secs": 3600}),
    )
    .await;
    let metrics = Arc::new(Metrics::new());
    // Three flags of one group and one of another, all within the group wait.
    for _ in 0..3 {
        add_flag(&db.pool, "10.0.0.1", "secret.aws").await;
    }
    add_flag(&db.pool, "10.0.0.2", "secret.aws").await;
    let _dispatcher = dispatch(&db.pool, &metrics);
    let got = receiver.wait_for(2).await;
    let mut counts: Vec<(String, i64)> = got
        .iter()
        .map(|r| {
            let b = r.json();
            (
                b["group_key"].as_str().unwrap().to_owned(),
                b["flag_count"].as_i64().unwrap(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("rule=secret.aws;src_ip=10.0.0.1".to_owned(), 3),
            ("rule=secret.aws;src_ip=10.0.0.2".to_owned(), 1)
        ]
    );

    // Within the repeat interval: counted, not sent.
    add_flag(&db.pool, "10.0.0.1", "secret.aws").await;
    add_flag(&db.pool, "10.0.0.1", "secret.aws").await;
    eventually(WITHIN, "two suppressed", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(suppressed), 0)::bigint FROM alert_groups")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        (n == 2).then_some(())
    })
    .await;
    assert_eq!(receiver.received().len(), 2);
    // The interval passes: the next flag is sent with the count.
    sqlx::query("UPDATE alert_groups SET last_sent_at = now() - interval '2 hours'")
        .execute(&db.pool)
        .await
        .unwrap();
    add_flag(&db.pool, "10.0.0.1", "secret.aws").await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].json()["suppressed_since_last"], 2);
    assert_eq!(got[2].json()["flag_count"], 1);
    assert!(metrics.render().contains(
        r#"flagstream_alerts_suppressed_total{kind="webhook",reason="repeat_interval"} 2"#
    ));
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_alert_on_the_third_try_exactly_once() {
    let (db, receiver, _) = with_destination(&[500, 503], "flaky", "webhook", "/in", 60).await;
    add_route(&db.pool, 1, json!({"id": "all", "destinations": ["flaky"]})).await;
    let metrics = Arc::new(Metrics::new());
    let _dispatcher = dispatch(&db.pool, &metrics);
    add_flag(&db.pool, "10.0.0.1", "secret.aws").await;
    wait_until_sent(&db.pool, 1).await;
    let got = receiver.received();
    assert_eq!(got.len(), 3, "two failures and the success");
    let keys: Vec<&str> = got.iter().map(|r| r.header("idempotency-key")).collect();
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "one delivery, retried: {keys:?}"
    );
    let (_, status, attempts, _, _) = deliveries(&db.pool).await.remove(0);
    assert_eq!((status.as_str(), attempts), ("sent", 3));
    let failed: Option<String> = sqlx::query_scalar("SELECT last_error FROM alert_deliveries")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(failed, None, "a sent delivery keeps no error");
    let exposition = metrics.render();
    assert!(
        exposition.contains(r#"flagstream_alerts_failed_total{kind="webhook",reason="status"} 2"#),
        "{exposition}"
    );
    // Nothing more arrives: the delivery is done.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn a_receiver_that_refuses_for_good_is_not_retried_and_an_admin_sees_why() {
    let (db, receiver, address) = with_destination(&[400], "strict", "webhook", "/in", 60).await;
    add_route(
        &db.pool,
        1,
        json!({"id": "all", "destinations": ["strict"]}),
    )
    .await;
    let _dispatcher = dispatch(&db.pool, &Arc::new(Metrics::new()));
    add_flag(&db.pool, "10.0.0.1", "secret.aws").await;
    eventually(WITHIN, "the delivery to fail", || async {
        let status: String = sqlx::query_scalar("SELECT status FROM alert_deliveries")
            .fetch_optional(&db.pool)
            .await
            .unwrap()?;
        (status == "failed").then_some(())
    })
    .await;
    let (error, status): (String, i32) =
        sqlx::query_as("SELECT last_error, last_status FROM alert_deliveries")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((error.as_str(), status), ("HTTP 400", 400));
    assert!(!error.contains(&address.to_string()), "no URL in the log");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn the_rate_limit_per_destination_holds_and_postpones_the_rest() {
    let (db, receiver, _) = with_destination(&[], "slow", "webhook", "/in", 2).await;
    add_route(
        &db.pool,
        1,
        json!({"id": "each", "destinations": ["slow"], "group_by": ["src_ip"]}),
    )
    .await;
    for i in 0..5 {
        add_flag(&db.pool, &format!("10.0.1.{i}"), "secret.aws").await;
    }
    let metrics = Arc::new(Metrics::new());
    let _dispatcher = dispatch(&db.pool, &metrics);
    eventually(WITHIN, "the other three postponed past now", || async {
        let later: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at > now() + interval '30 seconds'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        (later == 3).then_some(())
    })
    .await;
    assert_eq!(receiver.received().len(), 2, "two per minute");
    let attempts: i64 = sqlx::query_scalar("SELECT sum(attempts)::bigint FROM alert_deliveries")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "postponing is not an attempt");
    assert!(metrics
        .render()
        .contains(r#"flagstream_alerts_suppressed_total{kind="webhook",reason="rate_limit"} 3"#));
}

#[tokio::test]
async fn two_dispatchers_send_every_alert_once() {
    let (db, receiver, _) = with_destination(&[], "hook", "webhook", "/in", 10_000).await;
    add_route(
        &db.pool,
        1,
        json!({"id": "each", "destinations": ["hook"], "group_by": ["src_ip"]}),
    )
    .await;
    let metrics = Arc::new(Metrics::new());
    let _one = dispatch(&db.pool, &metrics);
    let _two = dispatch(&db.pool, &metrics);
    for i in 0..40 {
        add_flag(&db.pool, &format!("10.0.2.{i}"), "secret.aws").await;
    }
    wait_until_sent(&db.pool, 40).await;
    let mut keys: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("idempotency-key").to_owned())
        .collect();
    assert_eq!(keys.len(), 40, "no request twice");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 40);
}

#[tokio::test]
async fn slack_gets_block_kit_in_the_route_channel() {
    let (db, receiver, _) = with_destination(&[], "slack", "slack", "/services/T0/B0/XX", 60).await;
    add_route(
        &db.pool,
        1,
        json!({"id": "sec", "destinations": ["slack"], "slack_channel": "#sec-alerts"}),
    )
    .await;
    let _dispatcher = dispatch(&db.pool, &Arc::new(Metrics::new()));
    add_flag(&db.pool, "10.0.0.9", "secret.aws").await;
    let body = receiver.wait_for(1).await[0].json();
    assert_eq!(body["channel"], "#sec-alerts");
    assert_eq!(body["blocks"][0]["type"], "header");
    assert!(body["blocks"][3]["elements"][0]["text"]
        .as_str()
        .unwrap()
        .contains("flagstream.example.com/api/v1/flags/"));
    assert!(!body.to_string().contains(PLANTED));
}

#[tokio::test]
async fn alertmanager_shows_the_alert_with_its_labels() {
    let db = support::fresh_database().await;
    let port = free_port();
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(support::unique("alertmanager"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("alertmanager.yml"),
        "route:\n  receiver: sink\nreceivers:\n  - name: sink\n",
    )
    .unwrap();
    let _alertmanager = Process::start(
        "alertmanager",
        Command::new("prometheus-alertmanager").args([
            &format!("--config.file={}", dir.join("alertmanager.yml").display()),
            &format!("--storage.path={}", dir.display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=",
        ]),
    );
    wait_for_port(port).await;
    add_destination(
        &db.pool,
        "am",
        "alertmanager",
        &format!("http://127.0.0.1:{port}"),
        60,
    )
    .await;
    add_route(
        &db.pool,
        1,
        json!({"id": "pager", "destinations": ["am"], "match": {"min_severity": "high"}}),
    )
    .await;
    let _dispatcher = dispatch(&db.pool, &Arc::new(Metrics::new()));
    let flag = add_flag(&db.pool, "10.0.0.7", "secret.aws").await;
    wait_until_sent(&db.pool, 1).await;
    let http = reqwest::Client::new();
    let alerts: Value = http
        .get(format!("http://127.0.0.1:{port}/api/v2/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alert = &alerts[0];
    let labels: BTreeMap<String, String> = serde_json::from_value(alert["labels"].clone()).unwrap();
    assert_eq!(labels["alertname"], "FlagstreamFlag");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["route"], "pager");
    assert_eq!(labels["rule"], "secret.aws");
    assert_eq!(labels["src_ip"], "10.0.0.7");
    assert_eq!(alert["annotations"]["flag_ids"], flag.to_string());
    assert!(!alert.to_string().contains(PLANTED));
}

/// The consumer binary end to end: a batch whose transaction rolls back sends nothing; a
/// consumer killed with SIGKILL after the commit and before the delivery leaves it to the
/// next one, which sends it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_follow_commits_across_rollbacks_and_sigkill() {
    let topic = support::unique("alerts");
    let (_broker, bootstrap) = start_tansu(&topic, 1).await;
    let (db, receiver, address) = with_destination(&[], "hook", "webhook", "/in", 60).await;
    add_route(
        &db.pool,
        1,
        json!({"id": "all", "destinations": ["hook"], "repeat_interval_secs": 0}),
    )
    .await;
    // Every batch transaction fails at its outbox insert until the trigger goes.
    for statement in [
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse BEFORE INSERT ON alert_outbox FOR EACH ROW EXECUTE FUNCTION refuse()",
    ] {
        sqlx::query(statement).execute(&db.pool).await.unwrap();
    }
    let group = support::unique("alerts");
    let metrics_port = free_port();
    let consumer = start(&db, &bootstrap, &topic, &group, metrics_port, true);
    let secret_prompt =
        format!("here is my key {PLANTED} and secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    support::produce(
        &support::producer(&bootstrap),
        &topic,
        &[(0, Some(support::event("leak-1", &secret_prompt)))],
    )
    .await;
    wait_for_port(metrics_port).await;
    eventually(WITHIN, "a rolled-back batch", || async {
        let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (!text.contains(r#"flagstream_errors_total{kind="database"} 0"#)).then_some(())
    })
    .await;
    assert_eq!(support::count(&db.pool, "flags").await, 0);
    assert_eq!(support::count(&db.pool, "alert_deliveries").await, 0);
    assert!(
        receiver.received().is_empty(),
        "nothing sent for a rolled-back batch"
    );
    sqlx::query("DROP TRIGGER refuse ON alert_outbox")
        .execute(&db.pool)
        .await
        .unwrap();
    receiver.wait_for(1).await;
    assert_eq!(support::count(&db.pool, "flags").await, 1);
    let consumer_log = consumer.log();
    assert!(consumer.terminate().await.success());

    // A consumer that stores but does not dispatch, killed: the outbox keeps the work.
    let quiet_port = free_port();
    let quiet = start(&db, &bootstrap, &topic, &group, quiet_port, false);
    support::produce(
        &support::producer(&bootstrap),
        &topic,
        &[(0, Some(support::event("leak-2", &secret_prompt)))],
    )
    .await;
    support::wait_for_rows(&db.pool, "flags", 2, WITHIN).await;
    assert_eq!(support::count(&db.pool, "alert_outbox").await, 1);
    let quiet_log = quiet.log();
    quiet.kill();
    let next = start(&db, &bootstrap, &topic, &group, free_port(), true);
    let got = receiver.wait_for(2).await;
    wait_until_sent(&db.pool, 2).await;
    assert_eq!(got.len(), 2, "each flag alerted once");
    for r in &got {
        let body = String::from_utf8_lossy(&r.body);
        // Excerpts show a little context around a masked match, never the prompt or a key.
        assert!(
            !body.contains(PLANTED) && !body.contains("wJalrXUtnFEMI/K7MDENG"),
            "{body}"
        );
        assert!(!body.contains(&secret_prompt), "{body}");
    }
    let log: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT last_error, group_key FROM alert_deliveries")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(!format!("{log:?}").contains(PLANTED));
    let logs = [consumer_log, quiet_log, next.log()].concat();
    assert!(logs.contains("consuming"), "the logs were read");
    assert!(
        !logs.contains(PLANTED) && !logs.contains("here is my key"),
        "no content in the logs"
    );
    assert!(!logs.contains("wJalrXUtnFEMI"), "no content in the logs");
    assert!(
        !logs.contains(&address.to_string()),
        "no destination URL in the logs"
    );
}

fn start(
    db: &TestDb,
    bootstrap: &str,
    topic: &str,
    group: &str,
    metrics_port: u16,
    alerts: bool,
) -> Process {
    Process::start(
        "consumer",
        Command::new(binary("flagstream-consumer"))
            .env("DATABASE_URL", &db.url)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("KAFKA_TOPIC", topic)
            .env("KAFKA_GROUP_ID", group)
            .env("BATCH_TIMEOUT_MS", "50")
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("ENCRYPTION_KEY", TEST_KEY)
            .env("ALERTS_ENABLED", alerts.to_string())
            .env("ALERT_POLL_MS", "50")
            .env("ALERT_RETRY_BASE_MS", "50")
            .env(
                "KAFKA_OPTIONS",
                "session.timeout.ms=6000,heartbeat.interval.ms=500",
            )
            .env("LOG_FORMAT", "json"),
    )
}
