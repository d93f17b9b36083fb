//! End to end on real processes: the tansu broker, the consumer and API binaries, PostgreSQL.

use std::time::Duration;

use serde_json::Value;

use crate::procs::{
    binary, free_port, start_api, start_consumer, start_tansu, wait_for_port, ADMIN_PASSWORD,
};
use crate::support::{self, count, event, unique, wait_for_rows, CLEAN, FLAGGABLE};

const WITHIN: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_from_the_broker_through_the_consumer_to_the_api() {
    let topic = unique("llm_traffic");
    let (_broker, bootstrap) = start_tansu(&topic, 3).await;
    let db = support::fresh_database().await;
    let api_port = free_port();
    let metrics_port = free_port();
    let _api = start_api(&db.url, api_port, metrics_port);
    let password = ADMIN_PASSWORD;
    let consumer = start_consumer(&db.url, &bootstrap, &topic, "flagstream-e2e", None);

    let mut messages = Vec::new();
    let mut expected_ids = Vec::new();
    for i in 0..30 {
        let id = format!("e2e-{i:02}");
        let prompt = if i % 3 == 0 { FLAGGABLE } else { CLEAN };
        if i % 3 == 0 {
            expected_ids.push(id.clone());
        }
        messages.push((i % 3, Some(event(&id, prompt))));
    }
    messages.push((0, Some(b"\x00\x01 binary garbage".to_vec())));
    messages.push((1, Some(b"[\"an array\"]".to_vec())));
    messages.push((2, Some(br#"{"id":"x","timestamp":"soon","src_ip":"10.0.0.1","provider":"p","model":"m","prompt":""}"#.to_vec())));
    messages.push((2, Some(br#"{"id":"y","timestamp":1,"src_ip":"10.0.0.1","provider":"p","model":"m","prompt":5}"#.to_vec())));
    let producer = support::producer(&bootstrap);
    support::produce(&producer, &topic, &messages).await;

    wait_for_rows(&db.pool, "flags", 10, WITHIN).await;
    wait_for_rows(&db.pool, "dead_letters", 4, WITHIN).await;

    wait_for_port(api_port).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{api_port}");
    let ready = http
        .get(format!("{base}/ready"))
        .send()
        .await
        .expect("GET /ready");
    assert_eq!(ready.status(), 200);
    let denied = http
        .get(format!("{base}/api/v1/flags"))
        .send()
        .await
        .expect("GET flags");
    assert_eq!(denied.status(), 401);
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "admin", "password": password }))
        .send()
        .await
        .expect("POST login")
        .json()
        .await
        .expect("login JSON");
    let token = login["token"].as_str().expect("a token");
    let body: Value = http
        .get(format!("{base}/api/v1/flags?limit=100"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET flags")
        .json()
        .await
        .expect("flags JSON");
    let flags = body["flags"].as_array().expect("flags array");
    let mut ids: Vec<&str> = flags
        .iter()
        .map(|f| f["event_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, expected_ids);
    for flag in flags {
        assert_eq!(flag["severity"], "high");
        assert_eq!(flag["src_ip"], "10.20.30.40");
        let detections = flag["detections"].as_array().unwrap();
        assert_eq!(detections.len(), 2, "{flag}");
        for d in detections {
            let excerpt = d["excerpt"].as_str().unwrap();
            assert!(
                !excerpt.contains("ignore previous instructions"),
                "unredacted: {excerpt}"
            );
        }
    }
    // What the consumer sealed, the API opens, for a reason.
    let revealed: Value = http
        .post(format!("{base}/api/v1/flags/{}/reveal", flags[0]["id"]))
        .bearer_auth(token)
        .json(&serde_json::json!({ "reason": "e2e check" }))
        .send()
        .await
        .expect("POST reveal")
        .json()
        .await
        .expect("reveal JSON");
    assert_eq!(revealed["content"]["prompt"], FLAGGABLE, "{revealed}");
    let metrics = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .expect("GET metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains(r#"route="/api/v1/flags/{id}/reveal""#),
        "{metrics}"
    );

    // A graceful stop, then a restart: the group resumes where it committed.
    assert!(
        consumer.terminate().await.success(),
        "consumer exits 0 on SIGTERM"
    );
    let _consumer = start_consumer(&db.url, &bootstrap, &topic, "flagstream-e2e", None);
    support::produce(
        &producer,
        &topic,
        &[
            (0, Some(event("after-restart-1", FLAGGABLE))),
            (1, Some(event("after-restart-2", FLAGGABLE))),
            (2, Some(event("after-restart-3", CLEAN))),
            (2, Some(b"nope".to_vec())),
        ],
    )
    .await;
    wait_for_rows(&db.pool, "flags", 12, WITHIN).await;
    wait_for_rows(&db.pool, "dead_letters", 5, WITHIN).await;
    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT event_id) FROM flags")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(distinct, 12);
    assert_eq!(count(&db.pool, "detections").await, 24);
}

/// With MIGRATE_ON_START=false the consumer refuses a database it has not been migrated
/// for, naming the fix; `flagstream-consumer migrate` is that fix.
#[tokio::test]
async fn the_consumer_refuses_an_unmigrated_database_until_migrate_runs() {
    let db = support::empty_database().await;
    let consumer = |args: &[&str]| {
        std::process::Command::new(binary("flagstream-consumer"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("MIGRATE_ON_START", "false")
            .env("ENCRYPTION_KEY", support::TEST_KEY)
            .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
            .env("METRICS_ADDR", "127.0.0.1:0")
            .output()
            .expect("run the consumer")
    };
    let refused = consumer(&[]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("not migrated"), "{said}");
    assert!(said.contains("flagstream-consumer migrate"), "{said}");
    assert!(!consumer(&["migrate", "--check"]).status.success());

    let migrated = consumer(&["migrate"]);
    let said = String::from_utf8_lossy(&migrated.stdout);
    assert!(migrated.status.success(), "{said}");
    assert!(said.contains("schema is current"), "{said}");
    let checked = consumer(&["migrate", "--check", "--wait-secs", "5"]);
    assert!(checked.status.success());
    assert_eq!(count(&db.pool, "flags").await, 0);
}
