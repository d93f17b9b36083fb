use axum::http::StatusCode;
use flagstream_api::auth::Role;
use flagstream_rules::content::Keyring;
use serde_json::json;

use crate::{seed_flags, Api, TEST_KEY};

async fn flag_id(api: &Api, event_id: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM flags WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(api.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn triage_follows_the_workflow_and_keeps_history() {
    let api = Api::new().await;
    seed_flags(api.pool(), 5).await;
    let id = flag_id(&api, "ev-1").await;
    let uri = format!("/api/v1/flags/{id}");
    let patch = |body| api.as_role(Role::Analyst, "PATCH", &uri, Some(body));

    let (s, body) = patch(json!({"status": "true_positive"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "new cannot skip triage: {body}");
    let (s, body) =
        patch(json!({"status": "triaged", "assignee": "alice", "note": "looking"})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"id": id, "status": "triaged", "assignee": "alice"})
    );
    let (s, _) = patch(json!({"status": "false_positive", "note": "test data"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = patch(json!({"status": "closed"})).await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    let (s, body) = patch(json!({"assignee": ""})).await;
    assert_eq!(body["assignee"], serde_json::Value::Null, "{s} {body}");

    let (s, history) = api
        .as_role(Role::Viewer, "GET", &format!("{uri}/history"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let steps: Vec<(String, String, String)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["status_from"].as_str().unwrap().to_owned(),
                h["status_to"].as_str().unwrap().to_owned(),
                h["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let step = |a: &str, b: &str| (a.to_owned(), b.to_owned(), "analyst".to_owned());
    assert_eq!(
        steps,
        [
            step("new", "triaged"),
            step("triaged", "false_positive"),
            step("false_positive", "false_positive")
        ]
    );
    assert_eq!(history["history"][0]["note"], "looking");

    // Bulk: allowed changes apply, the rest are reported.
    let others: Vec<i64> = sqlx::query_scalar("SELECT id FROM flags WHERE id <> $1 ORDER BY id")
        .bind(id)
        .fetch_all(api.pool())
        .await
        .unwrap();
    let mut ids = others.clone();
    ids.extend([id, 999_999]);
    let (s, body) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/flags/bulk",
            Some(json!({"ids": ids, "status": "triaged"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let mut expected: Vec<i64> = others.iter().chain([&id]).copied().collect();
    expected.sort_unstable();
    assert_eq!(body["updated"], json!(expected));
    assert_eq!(
        body["skipped"],
        json!([{"id": 999_999, "reason": "not found"}])
    );
    let (s, body) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/flags/bulk",
            Some(json!({"ids": others, "status": "resolved"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["updated"].as_array().unwrap().len(), 4);
    let (s, body) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/flags/bulk",
            Some(json!({"ids": [others[0]], "status": "new"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["updated"], json!([]));
    assert_eq!(body["skipped"][0]["reason"], "cannot go from `resolved`");
    let resolved: i64 = sqlx::query_scalar("SELECT count(*) FROM flags WHERE status = 'resolved'")
        .fetch_one(api.pool())
        .await
        .unwrap();
    assert_eq!(resolved, 4);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM flag_history")
        .fetch_one(api.pool())
        .await
        .unwrap();
    assert_eq!(rows, 3 + 5 + 4);
}

#[tokio::test]
async fn reveal_decrypts_for_a_reason_and_is_audited() {
    let api = Api::new().await;
    seed_flags(api.pool(), 3).await;
    let keys = Keyring::from_config(Some(TEST_KEY), None).unwrap().unwrap();
    let content = json!({"prompt": "my AWS key is AKIA…", "response": "ok"});
    let sealed = keys.seal("ev-1", content.to_string().as_bytes()).unwrap();
    sqlx::query(
        "UPDATE flags SET content_mode = 'encrypted', content = $1 WHERE event_id = 'ev-1'",
    )
    .bind(&sealed)
    .execute(api.pool())
    .await
    .unwrap();
    // The same blob under another event fails closed: it is bound to ev-1.
    sqlx::query(
        "UPDATE flags SET content_mode = 'encrypted', content = $1 WHERE event_id = 'ev-2'",
    )
    .bind(&sealed)
    .execute(api.pool())
    .await
    .unwrap();
    let (one, two, three) = (
        flag_id(&api, "ev-1").await,
        flag_id(&api, "ev-2").await,
        flag_id(&api, "ev-3").await,
    );
    let reveal = |id: i64, body| {
        let api = &api;
        async move {
            api.as_role(
                Role::Analyst,
                "POST",
                &format!("/api/v1/flags/{id}/reveal"),
                body,
            )
            .await
        }
    };

    let (s, body) = reveal(one, Some(json!({"reason": "incident INC-42"}))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["content"]["prompt"], "my AWS key is AKIA…");
    assert_eq!(body["mode"], "encrypted");
    let (s, body) = reveal(one, Some(json!({}))).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is required: {body}"
    );
    let (s, body) = reveal(one, Some(json!({"reason": " "}))).await;
    assert_eq!(
        (s, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
    );
    let (s, body) = reveal(two, Some(json!({"reason": "incident INC-42"}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(!body.to_string().contains("AKIA"));
    let (s, _) = reveal(three, Some(json!({"reason": "incident INC-42"}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "nothing stored");
    let (s, _) = api
        .as_role(
            Role::Viewer,
            "POST",
            &format!("/api/v1/flags/{one}/reveal"),
            Some(json!({"reason": "curious"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let audit: Vec<(String, String, bool, serde_json::Value)> = sqlx::query_as(
        "SELECT actor, target, success, details FROM audit_log WHERE action = 'reveal' ORDER BY id",
    )
    .fetch_all(api.pool())
    .await
    .unwrap();
    let summary: Vec<(String, bool)> = audit.iter().map(|(_, t, ok, _)| (t.clone(), *ok)).collect();
    assert_eq!(
        summary,
        [
            (one.to_string(), true),
            (two.to_string(), false),
            (three.to_string(), false)
        ]
    );
    assert_eq!(audit[0].0, "analyst");
    assert_eq!(audit[0].3["reason"], "incident INC-42");
    assert!(
        !audit.iter().any(|a| a.3.to_string().contains("AKIA")),
        "content never reaches the audit log"
    );

    // Without a key the API refuses rather than guessing.
    let mut state = api.state.clone();
    state.keys = None;
    let keyless = Api::from_state(state, &flagstream_api::Hardening::default());
    let (s, _) = keyless
        .call(
            "POST",
            &format!("/api/v1/flags/{one}/reveal"),
            Some(&api.token(Role::Admin)),
            Some(json!({"reason": "incident INC-42"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}
