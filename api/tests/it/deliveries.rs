//! The alert delivery log: filters, cursor pages, and resending failed deliveries.

use axum::http::StatusCode;
use flagstream_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::alerts::audit_rows;
use crate::Api;

async fn seed_deliveries(pool: &PgPool) {
    // id 1..=7: statuses cycle pending, sent, failed; routes a/b; destinations x/y.
    sqlx::query(
        "INSERT INTO alert_deliveries (key, route_id, route_version, destination_id,
             destination_kind, group_key, flag_ids, status, attempts, next_attempt_at,
             lease_until, last_status, last_error, flagged_at, sent_at, latency_ms)
         SELECT 'k' || i, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, 1,
                CASE WHEN i <= 4 THEN 'x' ELSE 'y' END, 'webhook', 'rule=r', ARRAY[i]::bigint[],
                (ARRAY['pending', 'sent', 'failed'])[1 + i % 3],
                CASE WHEN i % 3 = 2 THEN 8 ELSE 1 END,
                now() + interval '1 hour', now() + interval '1 minute', 500, 'HTTP 500',
                now() - interval '1 minute',
                CASE WHEN i % 3 = 1 THEN now() END, CASE WHEN i % 3 = 1 THEN 1234 END
         FROM generate_series(1, 7) AS i ORDER BY i",
    )
    .execute(pool)
    .await
    .unwrap();
}

fn ids(body: &Value) -> Vec<i64> {
    body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_delivery_log_filters_pages_and_resends_failed_ones() {
    let api = Api::new().await;
    seed_deliveries(api.pool()).await;
    let analyst = |uri: String| {
        let api = &api;
        async move { api.as_role(Role::Analyst, "GET", &uri, None).await }
    };
    let (s, all) = analyst("/api/v1/alerts/deliveries".into()).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(ids(&all), [7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(all["next_cursor"], Value::Null);
    let sent = &all["deliveries"][6];
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["latency_ms"], 1234);
    assert!(sent["sent_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(sent["flag_ids"], json!([1]));
    assert_eq!(all["deliveries"][1]["sent_at"], Value::Null, "pending");
    for key in [
        "key",
        "route_version",
        "destination_kind",
        "group_key",
        "suppressed",
        "attempts",
        "next_attempt_at",
        "last_status",
        "last_error",
        "flagged_at",
        "created_at",
    ] {
        assert!(sent.get(key).is_some(), "{key}");
    }

    let (_, failed) = analyst("/api/v1/alerts/deliveries?status=failed".into()).await;
    assert_eq!(ids(&failed), [5, 2]);
    let (_, a) = analyst("/api/v1/alerts/deliveries?route=a".into()).await;
    assert_eq!(ids(&a), [6, 4, 2]);
    let (_, y) = analyst("/api/v1/alerts/deliveries?destination=y&route=b".into()).await;
    assert_eq!(ids(&y), [7, 5]);

    // Pages of 3 by cursor cover everything once.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/alerts/deliveries?limit=3".to_owned();
    loop {
        let (s, page) = analyst(uri.clone()).await;
        assert_eq!(s, StatusCode::OK);
        seen.extend(ids(&page));
        match page["next_cursor"].as_i64() {
            Some(c) => uri = format!("/api/v1/alerts/deliveries?limit=3&before={c}"),
            None => break,
        }
    }
    assert_eq!(seen, [7, 6, 5, 4, 3, 2, 1]);

    for (query, field) in [
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
    ] {
        let (s, body) = analyst(format!("/api/v1/alerts/deliveries?{query}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(body["error"]["field"], field);
    }
    let (s, _) = analyst(format!(
        "/api/v1/alerts/deliveries?route={}",
        "r".repeat(65)
    ))
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = analyst("/api/v1/alerts/deliveries?colour=red".into()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Only a failed delivery is resent.
    for (id, status) in [
        (1, StatusCode::CONFLICT),
        (3, StatusCode::CONFLICT),
        (99, StatusCode::NOT_FOUND),
    ] {
        let (s, body) = api
            .admin(
                "POST",
                &format!("/api/v1/alerts/deliveries/{id}/resend"),
                None,
            )
            .await;
        assert_eq!(s, status, "{id}: {body}");
    }
    let (s, resent) = api
        .admin("POST", "/api/v1/alerts/deliveries/2/resend", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{resent}");
    assert_eq!(resent["status"], "pending");
    assert_eq!(resent["attempts"], 0);
    assert_eq!(resent["last_error"], Value::Null);
    let (due, lease): (bool, Option<time::OffsetDateTime>) = sqlx::query_as(
        "SELECT next_attempt_at <= now(), lease_until FROM alert_deliveries WHERE id = 2",
    )
    .fetch_one(api.pool())
    .await
    .unwrap();
    assert!(due);
    assert!(lease.is_none());
    let (s, body) = api
        .admin("POST", "/api/v1/alerts/deliveries/2/resend", None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "now pending: {body}");
    let resends = audit_rows(api.pool(), "alert_delivery.resend").await;
    assert_eq!(resends.len(), 1);
    assert_eq!(resends[0].0.as_deref(), Some("2"));
    assert_eq!(resends[0].2["previous_attempts"], 8);
}
