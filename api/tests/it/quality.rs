use axum::http::StatusCode;
use flagstream_api::auth::Role;
use serde_json::{json, Value};

use crate::{seed_flags, Api};

/// Creates a shadow-mode keyword rule as an admin.
async fn create_shadow_rule(api: &Api, id: &str) {
    let rule = json!({"id": id, "name": "Codenames", "category": "confidential",
                      "severity": "high", "points": 40, "kind": "keyword",
                      "keywords": ["bluebird"], "mode": "shadow"});
    let (s, body) = api
        .as_role(Role::Admin, "POST", "/api/v1/rules", Some(rule))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

/// Records a detection of version 1 of `rule` on each flag, as the consumer would.
async fn hit(api: &Api, rule: &str, flags: &[i64]) {
    sqlx::query(
        "INSERT INTO detections (flag_id, rule_id, rule_version, field, span_start, span_end,
                                 excerpt, shadow)
         SELECT id, $1, 1, 'prompt', 0, 8, 'b******d', true FROM unnest($2::bigint[]) AS id",
    )
    .bind(rule)
    .bind(flags)
    .execute(api.pool())
    .await
    .unwrap();
}

async fn triage(api: &Api, ids: &[i64], status: &str) {
    let (s, body) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/flags/bulk",
            Some(json!({"ids": ids, "status": status})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["updated"].as_array().unwrap().len(),
        ids.len(),
        "{body}"
    );
}

async fn promote(api: &Api, rule: &str, gates: Value) -> (StatusCode, Value) {
    let uri = format!("/api/v1/rules/{rule}/promote");
    api.as_role(Role::Admin, "POST", &uri, Some(gates)).await
}

async fn audit_details(api: &Api, rule: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'rule.promote' AND target = $1 ORDER BY id",
    )
    .bind(rule)
    .fetch_all(api.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_shadow_rule_is_promoted_only_when_its_verdicts_pass_the_gates() {
    let api = Api::new().await;
    create_shadow_rule(&api, "acme.codename").await;
    seed_flags(api.pool(), 12).await;
    // All of yesterday (UTC), one a minute, so they fall in the 30-day window whenever the
    // test runs.
    let yesterday: String = sqlx::query_scalar(
        "UPDATE flags SET event_time = date_trunc('day', now(), 'UTC') - interval '1 day'
                                       + id * interval '1 minute'
         RETURNING to_char((date_trunc('day', now(), 'UTC') - interval '1 day') AT TIME ZONE 'UTC',
                           'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    )
    .fetch_one(api.pool())
    .await
    .unwrap();
    let ids: Vec<i64> = (1..=10).collect();
    hit(&api, "acme.codename", &ids).await;

    let (s, q) = api
        .as_role(
            Role::Viewer,
            "GET",
            "/api/v1/rules/acme.codename/quality",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(
        (q["flags"].as_i64(), q["verdicts"].as_i64()),
        (Some(10), Some(0)),
        "{q}"
    );
    assert_eq!(q["precision"], Value::Null);
    assert_eq!(q["mode"], "shadow");
    assert_eq!(
        q["hits_per_day"],
        json!([{"day": yesterday, "flags": 10}]),
        "{q}"
    );

    let (s, body) = promote(&api, "acme.codename", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("needs at least 20 verdicts on version 1, has 0")
            && message.contains("no precision"),
        "{message}"
    );

    // Flag 1 was a true positive, then resolved: it counts as one. Flag 2 was one, then
    // reopened for triage: it counts as none. Flag 11 has no detection of the rule.
    triage(&api, &(1..=12).collect::<Vec<_>>(), "triaged").await;
    triage(&api, &ids[..7], "true_positive").await;
    triage(&api, &[8, 9, 10, 11], "false_positive").await;
    triage(&api, &[1, 2], "resolved").await;
    triage(&api, &[2], "triaged").await;
    let (_, q) = api
        .as_role(
            Role::Viewer,
            "GET",
            "/api/v1/rules/acme.codename/quality",
            None,
        )
        .await;
    assert_eq!(
        (
            q["verdicts"].as_i64(),
            q["true_positive"].as_i64(),
            q["false_positive"].as_i64()
        ),
        (Some(9), Some(6), Some(3)),
        "{q}"
    );
    assert_eq!(q["precision"].as_f64(), Some(6.0 / 9.0));

    let (s, body) = promote(&api, "acme.codename", json!({"min_verdicts": 10})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("needs at least 10 verdicts on version 1, has 9")
            && message.contains("precision 0.667 is below 0.9"),
        "{message}"
    );
    let (s, body) = api
        .as_role(
            Role::Analyst,
            "POST",
            "/api/v1/rules/acme.codename/promote",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");

    let gates = json!({"min_verdicts": 9, "min_precision": 0.66});
    let (s, body) = promote(&api, "acme.codename", gates).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["rule"]["mode"], "enforce");
    assert_eq!(body["rule"]["version"], 2);
    assert_eq!(body["overridden"], json!([]));
    assert_eq!(body["quality"]["verdicts"], 9);
    let (_, stored) = api
        .as_role(Role::Viewer, "GET", "/api/v1/rules/acme.codename", None)
        .await;
    assert_eq!(
        (stored["mode"].as_str(), stored["version"].as_i64()),
        (Some("enforce"), Some(2))
    );
    let audited = audit_details(&api, "acme.codename").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0]["forced"], false);
    assert_eq!(audited[0]["from_version"], 1);

    let (s, body) = promote(&api, "acme.codename", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already enforces"));
    // The new version starts its measurement from nothing.
    let (_, q) = api
        .as_role(
            Role::Viewer,
            "GET",
            "/api/v1/rules/acme.codename/quality",
            None,
        )
        .await;
    assert_eq!(
        (q["version"].as_i64(), q["flags"].as_i64()),
        (Some(2), Some(0)),
        "{q}"
    );
}

#[tokio::test]
async fn an_admin_forces_a_promotion_only_with_a_reason_and_it_is_audited() {
    let api = Api::new().await;
    create_shadow_rule(&api, "acme.rush").await;

    let (s, body) = promote(&api, "acme.rush", json!({"force": true})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "reason");
    for bad in [json!({"min_precision": 1.5}), json!({"min_verdicts": 0})] {
        let (s, body) = promote(&api, "acme.rush", bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }

    let forced = json!({"force": true, "reason": "incident 42: needed now"});
    let (s, body) = promote(&api, "acme.rush", forced).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["rule"]["mode"], "enforce");
    assert_eq!(body["overridden"].as_array().unwrap().len(), 2, "{body}");
    let audited = audit_details(&api, "acme.rush").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0]["forced"], true);
    assert_eq!(audited[0]["reason"], "incident 42: needed now");

    let (s, _) = promote(&api, "acme.missing", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shadow_only_rows_are_searchable_on_request_and_left_out_of_findings() {
    let api = Api::new().await;
    seed_flags(api.pool(), 6).await;
    // Flags 5 and 6 hold only a shadow rule's hits, as the consumer stores them.
    sqlx::query("UPDATE flags SET shadow_only = true, score = 0, severity = 'low' WHERE id > 4")
        .execute(api.pool())
        .await
        .unwrap();
    let ids = |body: &Value| -> Vec<i64> {
        body["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_i64().unwrap())
            .collect()
    };
    let get = |uri: &'static str| api.as_role(Role::Viewer, "GET", uri, None);

    let (s, body) = get("/api/v1/flags?count=true").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        (ids(&body), body["total"].as_i64()),
        (vec![4, 3, 2, 1], Some(4))
    );
    let (_, body) = get("/api/v1/flags?shadow=only").await;
    assert_eq!(ids(&body), [6, 5]);
    assert_eq!(body["flags"][0]["shadow_only"], true);
    let (_, body) = get("/api/v1/flags?shadow=include&severity=low").await;
    assert_eq!(ids(&body), [6, 5]);
    let (s, body) = get("/api/v1/flags?shadow=sometimes").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "shadow");

    // Triage works on them: that is how a shadow rule's precision is measured.
    triage(&api, &[5], "triaged").await;
    triage(&api, &[5], "false_positive").await;
    let (_, body) =
        get("/api/v1/stats/summary?from=2026-11-21T00:00:00Z&to=2026-11-23T00:00:00Z").await;
    let severities: i64 = body["by_severity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["count"].as_i64().unwrap())
        .sum();
    assert_eq!(severities, 4, "{body}");
}
