//! Backtest jobs through the API: validated drafts and ranges, queued for a consumer's
//! worker, shown, listed, cancelled and deleted, audited. (Running them is the consumer's
//! part, tested against tansu in `consumer/tests/it/backtest.rs`.)

use axum::http::StatusCode;
use flagstream_api::auth::Role;
use serde_json::{json, Value};

use crate::Api;

fn draft(range: Value) -> Value {
    let mut body = json!({
        "rules": [{"id": "acme.codename", "name": "Codenames", "severity": "high",
                   "points": 40, "kind": "keyword", "keywords": ["bluebird"]}],
        "replaces": ["acme.old"],
    });
    for (k, v) in range.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn create(api: &Api, body: Value) -> (StatusCode, Value) {
    api.as_role(Role::Analyst, "POST", "/api/v1/rules/backtests", Some(body))
        .await
}

#[tokio::test]
async fn an_analyst_queues_a_backtest_and_reads_cancels_and_deletes_it() {
    let api = Api::new().await;
    let range = json!({"from": "2026-11-29T00:00:00Z", "to": "2026-12-06T00:00:00Z"});
    let (s, job) = create(&api, draft(range)).await;
    assert_eq!(s, StatusCode::OK, "{job}");
    assert_eq!(job["status"], "queued");
    assert_eq!(job["range"]["from"], "2026-11-29T00:00:00Z");
    assert_eq!(job["draft"]["rules"][0]["id"], "acme.codename");
    assert_eq!(job["draft"]["replaces"][0], "acme.old");
    assert_eq!(job["progress"]["scanned"], 0);
    assert!(job["result"].is_null());
    let id = job["id"].as_i64().unwrap();

    let uri = format!("/api/v1/rules/backtests/{id}");
    let (s, got) = api.as_role(Role::Viewer, "GET", &uri, None).await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["id"], id);
    let (s, list) = api
        .as_role(Role::Viewer, "GET", "/api/v1/rules/backtests", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["backtests"][0]["id"], id);

    // A viewer reads but does not run or cancel.
    let (s, _) = api
        .as_role(
            Role::Viewer,
            "POST",
            "/api/v1/rules/backtests",
            Some(draft(json!({"last_events": 10}))),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api.as_role(Role::Viewer, "DELETE", &uri, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Queued: cancelled at once; then a second DELETE removes it.
    let (s, body) = api.as_role(Role::Analyst, "DELETE", &uri, None).await;
    assert_eq!(
        (s, body["outcome"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{body}"
    );
    let (_, got) = api.as_role(Role::Viewer, "GET", &uri, None).await;
    assert_eq!(
        (got["status"].as_str(), got["cancel_requested"].as_bool()),
        (Some("cancelled"), Some(true))
    );
    let (s, body) = api.as_role(Role::Analyst, "DELETE", &uri, None).await;
    assert_eq!(
        (s, body["outcome"].as_str()),
        (StatusCode::OK, Some("deleted")),
        "{body}"
    );
    let (s, _) = api.as_role(Role::Viewer, "GET", &uri, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.as_role(Role::Analyst, "DELETE", &uri, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A running job is asked to stop; its worker does at its next checkpoint.
    let (_, job) = create(&api, draft(json!({"last_events": 1000}))).await;
    let id = job["id"].as_i64().unwrap();
    sqlx::query("UPDATE backtests SET status = 'running', worker = 'w', lease_until = now() + interval '1 minute' WHERE id = $1")
        .bind(id)
        .execute(api.pool())
        .await
        .unwrap();
    let uri = format!("/api/v1/rules/backtests/{id}");
    let (_, body) = api.as_role(Role::Analyst, "DELETE", &uri, None).await;
    assert_eq!(body["outcome"], "cancelling", "{body}");
    let (_, got) = api.as_role(Role::Viewer, "GET", &uri, None).await;
    assert_eq!(
        (got["status"].as_str(), got["cancel_requested"].as_bool()),
        (Some("running"), Some(true))
    );

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'rule.backtest%' ORDER BY id",
    )
    .fetch_all(api.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "rule.backtest",
            "rule.backtest_cancel",
            "rule.backtest_cancel",
            "rule.backtest",
            "rule.backtest_cancel"
        ]
    );
}

#[tokio::test]
async fn a_bad_draft_or_range_is_refused_naming_the_field_and_queues_nothing() {
    let api = Api::new().await;
    let cases = [
        (draft(json!({})), "from"),
        (draft(json!({"to": "2026-12-01T00:00:00Z"})), "from"),
        (
            draft(json!({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"})),
            "to",
        ),
        (draft(json!({"from": "yesterday"})), "from"),
        (draft(json!({"last_events": 0})), "last_events"),
        (
            draft(json!({"last_events": 10, "from": "2026-12-01T00:00:00Z"})),
            "from",
        ),
        (json!({"rules": [], "last_events": 10}), "rules"),
        (
            json!({"rules": [{"id": "x", "kind": "keyword"}], "last_events": 10}),
            "rule",
        ),
        (
            json!({"rules": [{"id": "acme.bad", "name": "n", "severity": "low", "points": 1,
                              "kind": "regex", "pattern": "(unclosed"}], "last_events": 10}),
            "rule",
        ),
        (
            json!({"rules": [{"id": "backtests", "name": "n", "severity": "low", "points": 1,
                              "kind": "keyword", "keywords": ["x"]}], "last_events": 10}),
            "id",
        ),
    ];
    for (body, field) in cases {
        let (s, answer) = create(&api, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} → {answer}");
    }
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM backtests")
        .fetch_one(api.pool())
        .await
        .unwrap();
    assert_eq!(queued, 0);

    // At most 20 at once.
    for _ in 0..20 {
        let (s, body) = create(&api, draft(json!({"last_events": 10}))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let (s, body) = create(&api, draft(json!({"last_events": 10}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
}
