use std::time::Duration;

use axum::http::StatusCode;
use flagstream_api::auth::Role;
use serde_json::{json, Value};
use sqlx::postgres::PgListener;

use crate::Api;

fn keyword_rule(id: &str, keywords: &[&str]) -> Value {
    json!({"id": id, "name": "Codenames", "category": "confidential", "severity": "high",
           "points": 40, "kind": "keyword", "keywords": keywords})
}

fn event(prompt: &str) -> Value {
    json!({"id": "e1", "timestamp": "2026-11-22T10:00:00Z", "src_ip": "10.0.0.1",
           "provider": "openai", "model": "gpt-4o", "prompt": prompt})
}

#[tokio::test]
async fn rules_are_validated_versioned_restored_and_announced() {
    let api = Api::new().await;
    let mut listener = PgListener::connect_with(api.pool()).await.unwrap();
    listener.listen("rules_changed").await.unwrap();
    let admin = |method: &'static str, uri: String, body: Option<Value>| {
        let api = &api;
        async move { api.as_role(Role::Admin, method, &uri, body).await }
    };

    // A bad regex is a 422 naming the rule and the problem.
    let (s, body) = admin(
        "POST",
        "/api/v1/rules".into(),
        Some(
            json!({"id": "acme.bad", "name": "b", "severity": "low", "points": 1,
                    "kind": "regex", "pattern": "(unclosed"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("acme.bad") && message.contains("unclosed"),
        "{message}"
    );
    let (s, body) = admin(
        "POST",
        "/api/v1/rules".into(),
        Some(json!({"id": "x", "name": "n"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "rule");
    let (s, _) = admin(
        "POST",
        "/api/v1/rules".into(),
        Some(keyword_rule("../etc", &["x"])),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (s, created) = admin(
        "POST",
        "/api/v1/rules".into(),
        Some(keyword_rule("acme.codenames", &["falcon"])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created["version"], 1);
    let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        note.payload(),
        "acme.codenames",
        "a LISTENing consumer hears the change"
    );
    let (s, _) = admin(
        "POST",
        "/api/v1/rules".into(),
        Some(keyword_rule("acme.codenames", &["x"])),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, v2) = admin(
        "PUT",
        "/api/v1/rules/acme.codenames".into(),
        Some(keyword_rule("acme.codenames", &["falcon", "osprey"])),
    )
    .await;
    assert_eq!((s, v2["version"].as_i64()), (StatusCode::OK, Some(2)));
    let (s, _) = admin(
        "PUT",
        "/api/v1/rules/acme.codenames".into(),
        Some(keyword_rule("acme.other", &["x"])),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "id must match the path"
    );
    let (s, v3) = admin(
        "PATCH",
        "/api/v1/rules/acme.codenames".into(),
        Some(json!({"enabled": false, "mode": "shadow"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v3["version"].as_i64(),
            v3["enabled"].as_bool(),
            v3["mode"].as_str()
        ),
        (Some(3), Some(false), Some("shadow"))
    );

    let (_, versions) = api
        .as_role(
            Role::Viewer,
            "GET",
            "/api/v1/rules/acme.codenames/versions",
            None,
        )
        .await;
    let list = versions["versions"].as_array().unwrap();
    assert_eq!(
        list.iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert!(list.iter().all(|v| v["changed_by"] == "admin"));
    let (seq1, seq3) = (
        list[2]["seq"].as_i64().unwrap(),
        list[0]["seq"].as_i64().unwrap(),
    );
    let (s, diff) = api
        .as_role(
            Role::Viewer,
            "GET",
            &format!("/api/v1/rules/acme.codenames/diff?from={seq1}&to={seq3}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{diff}");
    let fields: Vec<&str> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["enabled", "keywords", "mode", "version"]);

    let (s, restored) = admin(
        "POST",
        "/api/v1/rules/acme.codenames/restore".into(),
        Some(json!({"seq": seq1})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{restored}");
    assert_eq!(restored["version"], 4, "a restore is a new version");
    assert_eq!(restored["keywords"], json!(["falcon"]));
    assert_eq!(restored["enabled"], true);

    let (s, _) = admin("DELETE", "/api/v1/rules/acme.codenames".into(), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api
        .as_role(Role::Viewer, "GET", "/api/v1/rules/acme.codenames", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, versions) = api
        .as_role(
            Role::Viewer,
            "GET",
            "/api/v1/rules/acme.codenames/versions",
            None,
        )
        .await;
    assert_eq!(versions["versions"][0]["deleted"], true);
    let (s, again) = admin(
        "POST",
        "/api/v1/rules".into(),
        Some(keyword_rule("acme.codenames", &["kestrel"])),
    )
    .await;
    assert_eq!(
        (s, again["version"].as_i64()),
        (StatusCode::OK, Some(5)),
        "versions never repeat"
    );

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(api.pool())
        .await
        .unwrap();
    assert_eq!(
        actions,
        [
            "rule.create",
            "rule.update",
            "rule.update",
            "rule.restore",
            "rule.delete",
            "rule.create"
        ]
    );
}

#[tokio::test]
async fn dry_runs_evaluate_drafts_and_the_active_set() {
    let api = Api::new().await;
    let (s, body) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/rules/test",
            Some(json!({
                "rule": keyword_rule("draft.codenames", &["falcon"]),
                "events": [event("the Falcon plan"), event("falconry club"), {"id": "broken"}],
            })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v = &body["verdicts"];
    assert_eq!(v[0]["verdict"]["flagged"], true);
    assert_eq!(v[0]["verdict"]["detections"][0]["start"], 4);
    assert_eq!(v[0]["verdict"]["detections"][0]["end"], 10);
    assert_eq!(v[1]["verdict"]["flagged"], false, "whole words only");
    assert_eq!(v[2]["error"]["code"], "missing_field");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM rules")
        .fetch_one(api.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "a dry run stores nothing");

    // The active set: the stored rules.
    let (s, _) = api
        .as_role(
            Role::Admin,
            "POST",
            "/api/v1/rules",
            Some(keyword_rule("acme.codenames", &["osprey"])),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/rules/test",
            Some(json!({"events": [event("about osprey")]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body["verdicts"][0]["verdict"]["detections"][0]["rule_id"],
        "acme.codenames"
    );

    let (s, _) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/rules/test",
            Some(json!({"events": []})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, templates) = api
        .as_role(Role::Viewer, "GET", "/api/v1/rules/templates", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = templates["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "flagwise-compat"]);
}
