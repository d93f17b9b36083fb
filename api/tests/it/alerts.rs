//! Alert routes (validation, versions, audit) and their dry-run. Destinations are in
//! `destinations.rs`, the delivery log in `deliveries.rs`.

use axum::http::StatusCode;
use flagstream_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::{database, seed_flags, Api};

/// Planted in a destination's URL and signing secret; must never come back out.
pub const SECRET_URL: &str = "https://hooks.example.com/services/T0/B0/PLANTED-URL-TOKEN-4242";
pub const SIGNING_SECRET: &str = "PLANTED-SIGNING-SECRET-9999";
pub const PLANTED: [&str; 3] = ["PLANTED", "T0/B0", "services/"];

pub fn webhook(id: &str) -> Value {
    json!({"id": id, "kind": "webhook", "url": format!("https://{id}.example.com/hook")})
}

pub fn route(id: &str, destinations: &[&str]) -> Value {
    json!({"id": id, "name": "Secrets to ops", "destinations": destinations,
           "group_by": ["rule", "src_ip"], "repeat_interval_secs": 600})
}

impl Api {
    pub async fn admin(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.as_role(Role::Admin, method, uri, body).await
    }
}

pub async fn audit_rows(pool: &PgPool, action: &str) -> Vec<(Option<String>, String, Value)> {
    sqlx::query_as("SELECT target, actor, details FROM audit_log WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn routes_are_validated_versioned_and_audited() {
    let api = Api::new().await;
    for id in ["ops", "ops2"] {
        let (s, body) = api
            .admin("POST", "/api/v1/alerts/destinations", Some(webhook(id)))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    // A missing destination is a 422 naming it.
    let (s, body) = api
        .admin(
            "POST",
            "/api/v1/alerts/routes",
            Some(route("r1", &["ops", "nowhere"])),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "destinations");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`nowhere`"));

    let mut unknown = route("r1", &["ops"]);
    unknown["colour"] = "red".into();
    let mut bad_group = route("r1", &["ops"]);
    bad_group["group_by"] = json!(["weather"]);
    let mut long_name = route("r1", &["ops"]);
    long_name["name"] = "n".repeat(201).into();
    let mut long_channel = route("r1", &["ops"]);
    long_channel["slack_channel"] = "c".repeat(81).into();
    let mut bad_position = route("r1", &["ops"]);
    bad_position["position"] = json!(-1);
    for (body, field, says) in [
        (unknown, "route", "colour"),
        (bad_group, "route", "weather"),
        (route("Bad Id", &["ops"]), "route", "Bad Id"),
        (route(&"r".repeat(65), &["ops"]), "id", "64"),
        (route("r1", &[]), "route", "destination"),
        (long_name, "name", "200"),
        (long_channel, "slack_channel", "80"),
        (bad_position, "position", "position"),
        (route("r1", &["ops", "ops"]), "destinations", "twice"),
    ] {
        let (s, got) = api
            .admin("POST", "/api/v1/alerts/routes", Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {got}");
        assert_eq!(got["error"]["field"], field, "{got}");
        let message = got["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }

    let (s, r1) = api
        .admin("POST", "/api/v1/alerts/routes", Some(route("r1", &["ops"])))
        .await;
    assert_eq!(s, StatusCode::OK, "{r1}");
    assert_eq!(r1["version"], 1);
    assert_eq!(r1["position"], 1);
    assert_eq!(r1["updated_by"], "admin");
    assert_eq!(r1["definition"]["enabled"], true, "defaults are stored");
    assert!(r1["updated_at"].as_str().unwrap().ends_with('Z'));
    let (s, _) = api
        .admin("POST", "/api/v1/alerts/routes", Some(route("r1", &["ops"])))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, r2) = api
        .admin("POST", "/api/v1/alerts/routes", Some(route("r2", &["ops"])))
        .await;
    assert_eq!(r2["position"], 2, "after the last");
    let mut first = route("r0", &["ops2"]);
    first["position"] = json!(0);
    let (s, _) = api
        .admin("POST", "/api/v1/alerts/routes", Some(first))
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, list) = api
        .as_role(Role::Analyst, "GET", "/api/v1/alerts/routes", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = list["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r0", "r1", "r2"], "in evaluation order");

    // Replace: the body's id must be the path's; position is kept unless given.
    let (s, body) = api
        .admin(
            "PUT",
            "/api/v1/alerts/routes/r1",
            Some(route("r2", &["ops"])),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "id");
    let (s, _) = api
        .admin(
            "PUT",
            "/api/v1/alerts/routes/nope",
            Some(route("nope", &["ops"])),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .admin(
            "PUT",
            "/api/v1/alerts/routes/r1",
            Some(route("r1", &["missing"])),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let mut changed = route("r1", &["ops", "ops2"]);
    changed["match"] = json!({"rules": ["secret.*"], "min_score": 50});
    let (s, r1) = api
        .admin("PUT", "/api/v1/alerts/routes/r1", Some(changed))
        .await;
    assert_eq!(s, StatusCode::OK, "{r1}");
    assert_eq!(r1["version"], 2);
    assert_eq!(r1["position"], 1);
    let (s, got) = api
        .as_role(Role::Analyst, "GET", "/api/v1/alerts/routes/r1", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, r1);
    assert_eq!(got["definition"]["match"]["rules"], json!(["secret.*"]));

    // Deleting keeps the history; a new route of that id continues its versions.
    let (s, _) = api.admin("DELETE", "/api/v1/alerts/routes/r1", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api.admin("DELETE", "/api/v1/alerts/routes/r1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .as_role(Role::Analyst, "GET", "/api/v1/alerts/routes/r1", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, history) = api
        .as_role(
            Role::Analyst,
            "GET",
            "/api/v1/alerts/routes/r1/versions",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{history}");
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3, "{history}");
    assert_eq!(versions[0]["deleted"], true);
    assert_eq!(versions[0]["version"], 3);
    assert_eq!(versions[0]["changed_by"], "admin");
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(
        versions[1]["definition"]["destinations"],
        json!(["ops", "ops2"])
    );
    assert_eq!(versions[2]["version"], 1);
    let (s, _) = api
        .as_role(
            Role::Analyst,
            "GET",
            "/api/v1/alerts/routes/never/versions",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, again) = api
        .admin("POST", "/api/v1/alerts/routes", Some(route("r1", &["ops"])))
        .await;
    assert_eq!(again["version"], 4);

    let created = audit_rows(api.pool(), "alert_route.create").await;
    let targets: Vec<_> = created.iter().map(|r| r.0.as_deref().unwrap()).collect();
    assert_eq!(targets, ["r1", "r2", "r0", "r1"]);
    assert_eq!(created[0].1, "admin");
    let updated = audit_rows(api.pool(), "alert_route.update").await;
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].2["version"], 2);
    assert_eq!(audit_rows(api.pool(), "alert_route.delete").await.len(), 1);

    // A destination a route sends to cannot be deleted; the error names the routes.
    let (s, body) = api
        .admin("DELETE", "/api/v1/alerts/destinations/ops", None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`r1`") && message.contains("`r2`"),
        "{message}"
    );
    let (s, _) = api.admin("DELETE", "/api/v1/alerts/routes/r0", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api
        .admin("DELETE", "/api/v1/alerts/destinations/ops2", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        audit_rows(api.pool(), "alert_destination.delete")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_dry_run_renders_every_destination_and_stores_nothing() {
    let pool = database(true).await;
    let api = Api::with_pool(pool, &["--alert-api-base-url", "https://fs.example.com/"]);
    sqlx::query(
        "INSERT INTO users (username, password_hash, role) VALUES ('admin', 'no-login', 'admin')",
    )
    .execute(api.pool())
    .await
    .unwrap();
    seed_flags(api.pool(), 4).await;
    for (id, kind) in [
        ("hook", "webhook"),
        ("chat", "slack"),
        ("am", "alertmanager"),
    ] {
        let (s, body) = api
            .admin(
                "POST",
                "/api/v1/alerts/destinations",
                Some(json!({"id": id, "kind": kind, "url": format!("https://{id}.example.com/x")})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let mut everything = route("everything", &["hook", "chat", "am"]);
    everything["slack_channel"] = "#security".into();
    let mut secrets = route("secrets", &["hook"]);
    secrets["match"] = json!({"rules": ["secret.*"]});
    for r in [everything, secrets] {
        let (s, body) = api.admin("POST", "/api/v1/alerts/routes", Some(r)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let newest: (i64, String) =
        sqlx::query_as("SELECT id, host(src_ip) FROM flags ORDER BY event_time DESC LIMIT 1")
            .fetch_one(api.pool())
            .await
            .unwrap();
    let critical: i64 = sqlx::query_scalar("SELECT min(id) FROM flags WHERE severity = 'critical'")
        .fetch_one(api.pool())
        .await
        .unwrap();

    // Without a body: the newest flag (high, pii.email).
    let (s, dry) = api
        .admin("POST", "/api/v1/alerts/routes/everything/test", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{dry}");
    assert_eq!(dry["matched"], true);
    assert_eq!(dry["flag_id"], newest.0);
    assert_eq!(dry["considered_rules"], json!(["pii.email"]));
    assert_eq!(
        dry["group_key"],
        format!("rule=pii.email;src_ip={}", newest.1)
    );
    let messages = dry["messages"].as_array().unwrap();
    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["webhook", "slack", "alertmanager"]);
    let webhook = &messages[0]["body"];
    assert_eq!(messages[0]["destination"], "hook");
    assert_eq!(webhook["delivery"], "dry-run");
    assert_eq!(webhook["route"], "everything");
    assert_eq!(webhook["suppressed_since_last"], 0);
    assert_eq!(webhook["flags"][0]["id"], newest.0);
    assert_eq!(
        webhook["flags"][0]["url"],
        format!("https://fs.example.com/api/v1/flags/{}", newest.0)
    );
    assert_eq!(
        webhook["flags"][0]["rules"],
        json!([{"id": "pii.email", "version": 1}])
    );
    assert_eq!(messages[1]["body"]["channel"], "#security");
    assert!(messages[1]["body"]["blocks"].is_array());
    assert_eq!(messages[2]["body"][0]["labels"]["rule"], "pii.email");

    // A route whose matcher excludes the flag, then one that matches it.
    let (s, dry) = api
        .admin(
            "POST",
            "/api/v1/alerts/routes/secrets/test",
            Some(json!({"flag_id": newest.0})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{dry}");
    assert_eq!(dry["matched"], false);
    let (_, dry) = api
        .admin(
            "POST",
            "/api/v1/alerts/routes/secrets/test",
            Some(json!({"flag_id": critical})),
        )
        .await;
    assert_eq!(dry["matched"], true);
    assert_eq!(dry["considered_rules"], json!(["secret.aws"]));
    assert_eq!(dry["messages"][0]["body"]["severity"], "critical");

    for (uri, body, status) in [
        (
            "/api/v1/alerts/routes/secrets/test",
            json!({"flag_id": 999_999}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/alerts/routes/ghost/test",
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/alerts/routes/secrets/test",
            json!({"flag": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, got) = api.admin("POST", uri, Some(body)).await;
        assert_eq!(s, status, "{uri}: {got}");
    }

    for table in ["alert_deliveries", "alert_outbox", "alert_groups"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(api.pool())
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}: a dry-run stores nothing");
    }
    assert_eq!(audit_rows(api.pool(), "alert_route.test").await.len(), 3);
}
