//! What an attacker (or a careless client) tried against the API: each test is one finding
//! of the outside probe, and fails without its fix.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use flagstream_api::auth::Role;
use flagstream_api::users;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

use crate::{database_with_url, seed_flags, Api};

const WITHIN: Duration = Duration::from_secs(20);

async fn count(api: &Api, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(api.pool()).await.unwrap()
}

/// The audit row of the newest export, once its outcome is recorded.
async fn finished_export(api: &Api) -> (bool, Value) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let row: Option<(bool, Value)> = sqlx::query_as(
            "SELECT success, details FROM audit_log
             WHERE action = 'export' AND details->>'outcome' <> 'started' ORDER BY id DESC",
        )
        .fetch_optional(api.pool())
        .await
        .unwrap();
        if let Some(row) = row {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "the export's outcome was never audited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn keyword_rule(id: &str, keywords: usize) -> Value {
    let keywords: Vec<String> = (0..keywords).map(|i| format!("{id}-kw{i}")).collect();
    json!({ "id": id, "name": id, "severity": "low", "points": 1,
            "kind": "keyword", "keywords": keywords })
}

#[tokio::test]
async fn rules_are_bounded_per_rule_and_per_set() {
    let api = Api::new().await;
    let (status, body) = api
        .as_role(
            Role::Admin,
            "POST",
            "/api/v1/rules",
            Some(keyword_rule("big", 10_001)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "keywords");
    // The same draft cannot occupy the dry-run either.
    let (status, body) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/rules/test",
            Some(json!({ "rule": keyword_rule("big", 10_001), "events": [{ "prompt": "x" }] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    for i in 0..5 {
        let (status, body) = api
            .as_role(
                Role::Admin,
                "POST",
                "/api/v1/rules",
                Some(keyword_rule(&format!("r{i}"), 10_000)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = api
        .as_role(
            Role::Admin,
            "POST",
            "/api/v1/rules",
            Some(keyword_rule("one-more", 1)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("50000"),
        "{body}"
    );
    assert_eq!(count(&api, "SELECT count(*) FROM rules").await, 5);

    let mut long_name = keyword_rule("named", 1);
    long_name["name"] = "n".repeat(201).into();
    let (status, body) = api
        .as_role(Role::Admin, "POST", "/api/v1/rules", Some(long_name))
        .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("name"))
    );
    let mut nul = keyword_rule("nul", 1);
    nul["keywords"] = json!(["ok", "bad\u{0}"]);
    let (status, body) = api
        .as_role(Role::Admin, "POST", "/api/v1/rules", Some(nul))
        .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("keywords"))
    );
}

#[tokio::test]
async fn logins_cannot_grow_the_audit_log_or_lock_out_the_owner() {
    let api = Api::with_pool(crate::database(true).await, &["--login-max-failures", "3"]);
    users::create(
        api.pool(),
        "alice",
        "correct horse battery".into(),
        Role::Analyst,
        false,
    )
    .await
    .unwrap();
    let login = |ip: &'static str, password: &'static str| {
        let api = &api;
        async move {
            api.call_from(
                Some(ip),
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "username": "alice", "password": password })),
            )
            .await
            .0
        }
    };

    // 100 KB of username is refused before anything is looked up or written.
    let (status, body) = api.login(&"u".repeat(100_000), "whatever-password").await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("username"))
    );
    let (status, _) = api.login("nul\u{0}user", "whatever-password").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&api, "SELECT count(*) FROM audit_log").await, 0);

    for _ in 0..3 {
        assert_eq!(
            login("10.6.6.6", "guess guess guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The guesser is locked out of alice; alice, from her own address, is not.
    for _ in 0..5 {
        assert_eq!(
            login("10.6.6.6", "correct horse battery").await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        login("10.1.1.1", "correct horse battery").await,
        StatusCode::OK
    );
    // Five refusals, one audit row for them.
    assert_eq!(
        count(
            &api,
            "SELECT count(*) FROM audit_log WHERE details->>'reason' = 'throttled'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn invented_methods_share_one_metric_label() {
    let api = Api::new().await;
    for method in ["FOOBAR", "BAZ1", "QUUX2"] {
        let response = api
            .send(
                Request::builder()
                    .method(method)
                    .uri("/health")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert!(response.status().is_client_error());
    }
    let metrics = api.state.metrics.render();
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(
        !metrics.contains("FOOBAR") && !metrics.contains("QUUX2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn export_honours_limit_and_a_failure_mid_stream_is_visible_and_audited() {
    let (pool, url) = database_with_url(true).await;
    let api = Api::with_pool(pool, &[]);
    seed_flags(api.pool(), 10_000).await;
    sqlx::query(
        "INSERT INTO users (username, password_hash, role) VALUES ('analyst', 'x', 'analyst')",
    )
    .execute(api.pool())
    .await
    .unwrap();
    let export = |uri: &str| {
        Request::get(uri)
            .header(
                "authorization",
                format!("Bearer {}", api.token(Role::Analyst)),
            )
            .body(Body::empty())
            .unwrap()
    };

    let response = api.send(export("/api/v1/flags/export?limit=7")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = crate::text(response).await;
    assert_eq!(text.lines().count(), 7, "{text}");
    let (success, details) = finished_export(&api).await;
    assert!(success, "{details}");
    assert_eq!(
        (details["rows"].clone(), details["outcome"].clone()),
        (json!(7), json!("completed"))
    );
    sqlx::query("DELETE FROM audit_log")
        .execute(api.pool())
        .await
        .unwrap();

    // Ten pages; once the first has arrived, the table the next ones need disappears.
    let response = api.send(export("/api/v1/flags/export")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query("ALTER TABLE detections RENAME TO detections_gone")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut failed = false;
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "the body ended as if the export were complete");
    let (success, details) = finished_export(&api).await;
    assert!(!success, "{details}");
    assert_eq!(details["outcome"], "failed");
    assert!(details["rows"].as_i64().unwrap() < 10_000, "{details}");
}

#[tokio::test]
async fn input_that_used_to_be_a_500_is_a_4xx_naming_the_field() {
    let api = Api::new().await;
    let minus_9999 =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("-377705116800000000.1");
    let long_assignee = "a".repeat(3_000);
    let cases: Vec<(Role, &str, String, Option<Value>, &str)> = vec![
        (
            Role::Viewer,
            "GET",
            "/api/v1/flags?provider=open%00ai".into(),
            None,
            "provider",
        ),
        (Role::Viewer, "GET", "/api/v1/flags?q=%00".into(), None, "q"),
        (
            Role::Viewer,
            "GET",
            format!("/api/v1/flags?cursor={minus_9999}"),
            None,
            "cursor",
        ),
        (
            Role::Viewer,
            "GET",
            "/api/v1/rules/a%00b".into(),
            None,
            "id",
        ),
        (
            Role::Admin,
            "PATCH",
            "/api/v1/admin/users/x%00y".into(),
            Some(json!({ "disabled": true })),
            "username",
        ),
        (
            Role::Admin,
            "GET",
            "/api/v1/audit?actor=a%00".into(),
            None,
            "actor",
        ),
        (
            Role::Analyst,
            "PATCH",
            "/api/v1/flags/1".into(),
            Some(json!({ "assignee": "bob\u{0}" })),
            "assignee",
        ),
        (
            Role::Analyst,
            "PATCH",
            "/api/v1/flags/1".into(),
            Some(json!({ "assignee": long_assignee })),
            "assignee",
        ),
        (
            Role::Analyst,
            "PATCH",
            "/api/v1/flags/1".into(),
            Some(json!({ "note": "n\u{0}" })),
            "note",
        ),
        (
            Role::Analyst,
            "POST",
            "/api/v1/flags/1/reveal".into(),
            Some(json!({ "reason": "incident\u{0}42" })),
            "reason",
        ),
        (
            Role::Viewer,
            "GET",
            "/api/v1/stats/summary?from=2020-01-01T00:00:00Z".into(),
            None,
            "from",
        ),
        (
            Role::Admin,
            "POST",
            "/api/v1/alerts/routes".into(),
            Some(json!({ "id": "r", "destinations": ["hook\u{0}"] })),
            "destinations",
        ),
    ];
    for (role, method, uri, body, field) in cases {
        let (status, response) = api.as_role(role, method, &uri, body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {uri}: {response}"
        );
        assert_eq!(
            response["error"]["field"], field,
            "{method} {uri}: {response}"
        );
    }
    let (status, body) = api.login("nul\u{0}", "x-password-x").await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("username"))
    );
}

#[tokio::test]
async fn a_password_change_revokes_the_tokens_issued_before_it() {
    let api = Api::new().await;
    users::create(
        api.pool(),
        "alice",
        "correct horse battery".into(),
        Role::Analyst,
        false,
    )
    .await
    .unwrap();
    let (_, body) = api.login("alice", "correct horse battery").await;
    let old = body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        api.call("GET", "/api/v1/auth/me", Some(&old), None).await.0,
        StatusCode::OK
    );

    let (status, body) = api
        .as_role(
            Role::Admin,
            "PATCH",
            "/api/v1/admin/users/alice",
            Some(json!({ "password": "a brand new passphrase" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        api.call("GET", "/api/v1/auth/me", Some(&old), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = api.login("alice", "a brand new passphrase").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new = body["token"].as_str().unwrap();
    assert_eq!(
        api.call("GET", "/api/v1/auth/me", Some(new), None).await.0,
        StatusCode::OK
    );
    // A role change alone keeps sessions (the role is read live anyway).
    api.as_role(
        Role::Admin,
        "PATCH",
        "/api/v1/admin/users/alice",
        Some(json!({ "role": "viewer" })),
    )
    .await;
    assert_eq!(
        api.call("GET", "/api/v1/auth/me", Some(new), None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn heavy_reads_stop_at_their_time_limit() {
    let (pool, url) = database_with_url(true).await;
    let api = Api::with_pool(pool, &["--query-timeout-secs", "1"]);
    sqlx::query(
        "INSERT INTO users (username, password_hash, role) VALUES ('viewer', 'x', 'viewer')",
    )
    .execute(api.pool())
    .await
    .unwrap();
    // Another session holds the flags table, so the count cannot finish by itself.
    let mut holder = PgConnection::connect(&url).await.unwrap();
    let mut tx = holder.begin().await.unwrap();
    sqlx::query("LOCK TABLE flags IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let (status, body) = api
        .as_role(Role::Viewer, "GET", "/api/v1/flags?count=true", None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "query_timeout");
    let (status, body) = api
        .as_role(Role::Viewer, "GET", "/api/v1/stats/summary", None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    tx.rollback().await.unwrap();
    let (status, body) = api
        .as_role(Role::Viewer, "GET", "/api/v1/flags?count=true", None)
        .await;
    assert_eq!((status, &body["total"]), (StatusCode::OK, &json!(0)));
}

#[tokio::test]
async fn reveal_probes_are_audited_and_the_last_admin_cannot_be_demoted_by_a_key() {
    let api = Api::new().await;
    let (status, _) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/flags/424242/reveal",
            Some(json!({ "reason": "incident 7" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let row: (String, bool, Value) =
        sqlx::query_as("SELECT target, success, details FROM audit_log WHERE action = 'reveal'")
            .fetch_one(api.pool())
            .await
            .unwrap();
    assert_eq!((row.0.as_str(), row.1), ("424242", false));
    assert_eq!(row.2["reason"], "incident 7");

    let (_, key) = api
        .as_role(
            Role::Admin,
            "POST",
            "/api/v1/admin/api-keys",
            Some(json!({ "name": "ci", "role": "admin" })),
        )
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    for change in [json!({ "role": "viewer" }), json!({ "disabled": true })] {
        let (status, body) = api
            .call(
                "PATCH",
                "/api/v1/admin/users/admin",
                Some(&key),
                Some(change),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
    }
    assert_eq!(
        count(
            &api,
            "SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled"
        )
        .await,
        1
    );
    // With a second admin, the first can be demoted.
    api.as_role(
        Role::Admin,
        "PATCH",
        "/api/v1/admin/users/analyst",
        Some(json!({ "role": "admin" })),
    )
    .await;
    let (status, body) = api
        .call(
            "PATCH",
            "/api/v1/admin/users/admin",
            Some(&key),
            Some(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn rate_limits_per_address_and_per_credential() {
    let api = Api::with_users(&[
        "--rate-limit-per-ip",
        "3",
        "--rate-limit-per-credential",
        "2",
    ])
    .await;
    for _ in 0..3 {
        assert_eq!(
            api.call_from(Some("10.2.2.2"), "GET", "/health", None, None)
                .await
                .0,
            StatusCode::OK
        );
    }
    let mut request = Request::get("/health").body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [10, 2, 2, 2],
            1,
        ))));
    let response = api.send(request).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(
        api.call_from(Some("10.3.3.3"), "GET", "/health", None, None)
            .await
            .0,
        StatusCode::OK
    );

    let token = api.token(Role::Viewer);
    for _ in 0..2 {
        assert_eq!(
            api.call("GET", "/api/v1/auth/me", Some(&token), None)
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, body) = api.call("GET", "/api/v1/auth/me", Some(&token), None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::TOO_MANY_REQUESTS, &json!("rate_limited"))
    );
    assert_eq!(
        api.as_role(Role::Analyst, "GET", "/api/v1/auth/me", None)
            .await
            .0,
        StatusCode::OK
    );
    let metrics = api.state.metrics.render();
    assert!(
        metrics.contains("scope=\"ip\"") && metrics.contains("scope=\"credential\""),
        "{metrics}"
    );
}
