use std::collections::HashMap;

use axum::http::StatusCode;
use flagstream_api::auth::Role;
use serde_json::Value;

use crate::{seed_flags, text, Api};

async fn count(api: &Api, query: &str) -> usize {
    let (status, body) = api
        .as_role(
            Role::Viewer,
            "GET",
            &format!("/api/v1/flags?limit=500&{query}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["flags"].as_array().unwrap().len()
}

#[tokio::test]
async fn filters_select_exactly_the_matching_flags() {
    let api = Api::new().await;
    seed_flags(api.pool(), 60).await;
    for (query, expected) in [
        ("", 60),
        ("severity=critical", 30),
        ("severity=critical,high", 60),
        ("min_score=50", 30),
        ("src_ip=10.0.0.0/24", 30),
        ("src_ip=192.168.0.2", 1),
        ("model=claude-3-opus*", 20),
        ("model=gpt-4?", 40),
        ("provider=anthropic", 20),
        ("rule_id=secret.aws", 30),
        ("category=pii", 30),
        ("user=user-1", 12),
        ("app=app-1", 30),
        ("status=new", 60),
        ("status=resolved", 0),
        ("q=EV-12", 1),
        ("q=%25", 0),
        ("from=2026-11-22T00:10:00Z&to=2026-11-22T00:20:00Z", 10),
        (
            "severity=critical&provider=anthropic&from=2026-11-22T00:30:00Z",
            5,
        ),
    ] {
        assert_eq!(count(&api, query).await, expected, "{query}");
    }
    let (_, body) = api
        .as_role(
            Role::Viewer,
            "GET",
            "/api/v1/flags?limit=5&severity=high&count=true",
            None,
        )
        .await;
    assert_eq!(body["total"], 30);
    assert_eq!(body["flags"].as_array().unwrap().len(), 5);
    let first = &body["flags"][0];
    assert_eq!(first["event_id"], "ev-60", "newest first");
    assert_eq!(first["detections"][0]["rule_id"], "pii.email");
    assert!(first.get("content").is_none(), "content is never listed");

    for (query, field) in [
        ("severity=bogus", "severity"),
        ("status=closed", "status"),
        ("src_ip=10.0.0.0/33", "src_ip"),
        ("from=yesterday", "from"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
        ("min_score=101", "min_score"),
    ] {
        let (status, body) = api
            .as_role(Role::Viewer, "GET", &format!("/api/v1/flags?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let (status, _) = api
        .as_role(Role::Viewer, "GET", "/api/v1/flags?nonsense=1", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown parameters are refused"
    );

    let id: i64 = sqlx::query_scalar("SELECT id FROM flags WHERE event_id = 'ev-7'")
        .fetch_one(api.pool())
        .await
        .unwrap();
    let (status, flag) = api
        .as_role(Role::Viewer, "GET", &format!("/api/v1/flags/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flag["severity"], "critical");
    assert_eq!(flag["src_ip"], "10.0.0.7");
    assert_eq!(flag["detections"][0]["excerpt"], "my ke****** is ev-7");
    let (status, _) = api
        .as_role(Role::Viewer, "GET", "/api/v1/flags/999999", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .as_role(Role::Viewer, "GET", "/api/v1/flags/abc", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn pages_neither_skip_nor_repeat_while_flags_arrive() {
    let api = Api::new().await;
    seed_flags(api.pool(), 200).await;
    let original: Vec<i64> = sqlx::query_scalar("SELECT id FROM flags")
        .fetch_all(api.pool())
        .await
        .unwrap();
    let mut seen: HashMap<i64, u32> = HashMap::new();
    let mut cursor: Option<String> = None;
    let mut offset = 1_000;
    loop {
        // New flags land between page requests: newer, older and at the same instant.
        sqlx::query(
            "INSERT INTO flags (event_id, event_time, src_ip, provider, model, score, severity,
                                kafka_topic, kafka_partition, kafka_offset)
             SELECT 'late-' || $1 || '-' || k, t, '10.9.9.9', 'openai', 'gpt-4o', 10, 'low', 't', 1, $1 * 10 + k
             FROM (VALUES (1, '2026-11-23T00:00:00Z'::timestamptz),
                          (2, '2026-11-21T00:00:00Z'::timestamptz),
                          (3, '2026-11-22T01:40:00Z'::timestamptz)) AS v(k, t)",
        )
        .bind(offset)
        .execute(api.pool())
        .await
        .unwrap();
        offset += 1;
        let uri = match &cursor {
            Some(c) => format!("/api/v1/flags?limit=7&cursor={c}"),
            None => "/api/v1/flags?limit=7".to_owned(),
        };
        let (status, body) = api.as_role(Role::Viewer, "GET", &uri, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for flag in body["flags"].as_array().unwrap() {
            *seen.entry(flag["id"].as_i64().unwrap()).or_default() += 1;
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(offset < 2_000, "pagination does not end");
    }
    for id in &original {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "flag {id} seen {:?} times",
            seen.get(id)
        );
    }
    assert!(seen.values().all(|&n| n == 1), "no flag is repeated");
}

#[tokio::test]
async fn export_streams_every_match_without_content() {
    let api = Api::new().await;
    seed_flags(api.pool(), 2_500).await;
    sqlx::query("UPDATE flags SET event_id = '=cmd|calc', content_mode = 'redacted', content = 'secret prompt' WHERE event_id = 'ev-1'")
        .execute(api.pool())
        .await
        .unwrap();
    let token = api.token(Role::Analyst);
    let get = |uri: &str| {
        axum::http::Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };

    let response = api
        .send(get("/api/v1/flags/export?severity=critical"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = text(response).await;
    let rows: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1_250, "pages of 1000 are stitched together");
    assert!(rows.iter().all(|r| r["severity"] == "critical"));
    assert!(!body.contains("secret prompt"));

    let response = api
        .send(get(
            "/api/v1/flags/export?format=csv&to=2026-11-22T00:03:00Z",
        ))
        .await;
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let body = text(response).await;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 3, "header and two flags: {body}");
    assert!(lines[0].starts_with("id,event_id,event_time"));
    assert!(
        lines[2].contains(",\"'=cmd|calc\","),
        "formula defused: {}",
        lines[2]
    );

    let response = api.send(get("/api/v1/flags/export?format=xml")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let exports: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'export' AND actor = 'analyst'",
    )
    .fetch_one(api.pool())
    .await
    .unwrap();
    assert_eq!(exports, 2);
}
