//! Alert destinations: the URL and signing secret go in sealed and never come back out.

use axum::http::StatusCode;
use clap::Parser as _;
use flagstream_api::state::AppState;
use flagstream_api::Cli;
use serde_json::{json, Value};

use crate::alerts::{audit_rows, route, PLANTED, SECRET_URL, SIGNING_SECRET};
use crate::{database, seed_flags, Api, JWT_SECRET};

#[tokio::test]
async fn destination_urls_and_secrets_never_come_back_out() {
    let api = Api::new().await;
    let mut bodies: Vec<String> = Vec::new();
    let mut call = async |method: &str, uri: &str, body: Option<Value>| {
        let (s, got) = api.admin(method, uri, body).await;
        bodies.push(got.to_string());
        (s, got)
    };

    let planted = json!({"id": "ops-hook", "kind": "webhook", "url": SECRET_URL,
                         "signing_secret": SIGNING_SECRET, "max_per_minute": 30});
    let (s, created) = call("POST", "/api/v1/alerts/destinations", Some(planted.clone())).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created["display_url"], "https://hooks.example.com/…");
    assert_eq!(created["signed"], true);
    assert_eq!(created["kind"], "webhook");
    assert_eq!(created["max_per_minute"], 30);
    assert_eq!(created["version"], 1);
    let (s, _) = call("POST", "/api/v1/alerts/destinations", Some(planted.clone())).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Invalid bodies that carry the secrets: the errors name the field, never the value.
    let mut bad = Vec::new();
    for (change, field) in [
        (
            json!({"url": "ftp://hooks.example.com/PLANTED-URL-TOKEN-4242"}),
            "url",
        ),
        (
            json!({"url": format!("{SECRET_URL}{}", "x".repeat(2048))}),
            "url",
        ),
        (json!({"url": "https://"}), "url"),
        (json!({"signing_secret": "PLANTED-short"}), "signing_secret"),
        (json!({"kind": "pager"}), "kind"),
        (json!({"max_per_minute": 0}), "max_per_minute"),
        (json!({"max_per_minute": 10_001}), "max_per_minute"),
        (json!({"id": "Ops Hook"}), "id"),
        (json!({"id": "x".repeat(65)}), "id"),
        (json!({"kind": "slack"}), "signing_secret"),
    ] {
        let mut body = planted.clone();
        body["id"] = "other".into();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        bad.push((body, field));
    }
    for (body, field) in bad {
        let (s, got) = call("POST", "/api/v1/alerts/destinations", Some(body.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {got}");
        assert_eq!(got["error"]["field"], field, "{got}");
    }
    let mut unknown = planted.clone();
    unknown["password"] = "x".into();
    let (s, _) = call("POST", "/api/v1/alerts/destinations", Some(unknown)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (s, _) = call(
        "POST",
        "/api/v1/alerts/destinations",
        Some(json!({"id": "chat", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/PLANTED-SLACK"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, list) = call("GET", "/api/v1/alerts/destinations", None).await;
    assert_eq!(s, StatusCode::OK);
    let list = list["destinations"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], "chat");
    assert_eq!(list[0]["signed"], false);
    assert_eq!(list[0]["max_per_minute"], 60, "the default");
    assert_eq!(list[1]["id"], "ops-hook");
    assert_eq!(list[1]["signed"], true);
    let keys: Vec<&String> = list[1].as_object().unwrap().keys().collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("url") && *k != "display_url"),
        "{keys:?}"
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("secret") || k.contains("sealed")),
        "{keys:?}"
    );

    // Replace: the URL is required again; a new version.
    let (s, _) = call(
        "PUT",
        "/api/v1/alerts/destinations/ops-hook",
        Some(json!({"kind": "webhook"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = call(
        "PUT",
        "/api/v1/alerts/destinations/ops-hook",
        Some(json!({"id": "chat", "kind": "webhook", "url": SECRET_URL})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = call(
        "PUT",
        "/api/v1/alerts/destinations/ghost",
        Some(json!({"kind": "webhook", "url": SECRET_URL})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let replaced_url = "http://user:PLANTED-PASSWORD@10.0.0.9:9093/PLANTED-PATH";
    let (s, replaced) = call(
        "PUT",
        "/api/v1/alerts/destinations/ops-hook",
        Some(json!({"kind": "alertmanager", "url": replaced_url, "max_per_minute": 5})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["kind"], "alertmanager");
    assert_eq!(replaced["display_url"], "http://10.0.0.9:9093/…");
    assert_eq!(replaced["signed"], false);

    // Routes and the dry-run show the destination by id and display URL only.
    let (s, _) = call(
        "POST",
        "/api/v1/alerts/routes",
        Some(route("to-ops", &["ops-hook", "chat"])),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    seed_flags(api.pool(), 2).await;
    let (s, dry) = call("POST", "/api/v1/alerts/routes/to-ops/test", None).await;
    assert_eq!(s, StatusCode::OK, "{dry}");
    let (s, _) = call("DELETE", "/api/v1/alerts/destinations/chat", None).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // What is stored is sealed.
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT sealed FROM alert_destinations")
        .fetch_all(api.pool())
        .await
        .unwrap();
    for blob in sealed {
        assert!(!String::from_utf8_lossy(&blob).contains("PLANTED"));
    }
    let audit: Vec<String> = sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_log a")
        .fetch_all(api.pool())
        .await
        .unwrap();
    assert!(audit.iter().any(|r| r.contains("alert_destination.create")));
    assert!(audit.iter().any(|r| r.contains("alert_destination.update")));
    for text in bodies.iter().chain(&audit) {
        for planted in PLANTED {
            assert!(!text.contains(planted), "`{planted}` leaked: {text}");
        }
        assert!(!text.contains(SIGNING_SECRET) && !text.contains(SECRET_URL));
    }
    let created = audit_rows(api.pool(), "alert_destination.create").await;
    assert_eq!(created[0].0.as_deref(), Some("ops-hook"));
    assert_eq!(
        created[0].2,
        json!({"kind": "webhook", "display_url": "https://hooks.example.com/…"})
    );
}

#[tokio::test]
async fn destinations_need_the_content_keyring() {
    let config = Cli::try_parse_from([
        "flagstream-api",
        "--database-url",
        "postgres://unused",
        "--jwt-secret-key",
        JWT_SECRET,
    ])
    .unwrap()
    .config;
    let state = AppState::new(database(true).await, &config).unwrap();
    assert!(state.keys.is_none());
    let api = Api::from_state(state, &flagstream_api::hardening(&config));
    sqlx::query(
        "INSERT INTO users (username, password_hash, role) VALUES ('admin', 'no-login', 'admin')",
    )
    .execute(api.pool())
    .await
    .unwrap();
    let (s, body) = api
        .admin(
            "POST",
            "/api/v1/alerts/destinations",
            Some(json!({"id": "ops", "kind": "webhook", "url": SECRET_URL})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"]["message"],
        "alert destinations are sealed with the content keyring: set ENCRYPTION_KEY or ENCRYPTION_KEYS"
    );
    assert!(!body.to_string().contains("PLANTED"));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_destinations")
        .fetch_one(api.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
    // No flags at all: a dry-run has nothing to render.
    sqlx::query(
        "INSERT INTO alert_routes (id, position, definition)
         VALUES ('r', 1, '{\"id\": \"r\", \"destinations\": [\"ops\"]}')",
    )
    .execute(api.pool())
    .await
    .unwrap();
    let (s, body) = api
        .admin("POST", "/api/v1/alerts/routes/r/test", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
}
