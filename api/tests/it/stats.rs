use axum::http::StatusCode;
use flagstream_api::auth::Role;
use serde_json::json;

use crate::{seed_flags, Api};

#[tokio::test]
async fn summary_and_timeseries_count_flags_and_traffic() {
    let api = Api::new().await;
    seed_flags(api.pool(), 120).await;
    sqlx::query(
        "INSERT INTO traffic_rollups (minute, provider, model, app, events, flagged, tokens_in, tokens_out, cost_micros)
         SELECT '2026-11-22T00:00:00Z'::timestamptz + i * interval '1 minute', 'openai', 'gpt-4o', '',
                10, 1, 100, 50, 2500
         FROM generate_series(1, 120) AS i",
    )
    .execute(api.pool())
    .await
    .unwrap();
    // Triage verdicts for the false-positive rate: of the secret.aws flags, 3 true, 1 false.
    sqlx::query(
        "UPDATE flags SET status = CASE WHEN event_id IN ('ev-1', 'ev-3', 'ev-5') THEN 'true_positive'
                                        ELSE 'false_positive' END
         WHERE event_id IN ('ev-1', 'ev-3', 'ev-5', 'ev-7')",
    )
    .execute(api.pool())
    .await
    .unwrap();
    let window = "from=2026-11-22T00:00:00Z&to=2026-11-22T03:00:00Z";
    let (s, body) = api
        .as_role(
            Role::Viewer,
            "GET",
            &format!("/api/v1/stats/summary?{window}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["by_severity"],
        json!([{"severity": "critical", "count": 60}, {"severity": "high", "count": 60}])
    );
    assert_eq!(
        body["by_category"],
        json!([{"category": "pii", "count": 60}, {"category": "secrets", "count": 60}])
    );
    assert_eq!(body["by_status"][0], json!({"status": "new", "count": 116}));
    assert_eq!(
        body["top_providers"],
        json!([{"provider": "openai", "count": 80}, {"provider": "anthropic", "count": 40}])
    );
    assert_eq!(body["events"], 1200);
    assert_eq!(body["flagged"], 120);
    assert_eq!(body["flagged_rate"], 0.1);
    assert_eq!(
        body["false_positive_rate"],
        json!([{"rule_id": "secret.aws", "true_positive": 3, "false_positive": 1, "rate": 0.25,
                "precision": 0.75}])
    );

    let (s, body) = api
        .as_role(
            Role::Viewer,
            "GET",
            &format!("/api/v1/stats/timeseries?{window}&bucket=hour"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 3);
    assert_eq!(series[0]["time"], "2026-11-22T00:00:00Z");
    assert_eq!(series[0]["events"], 590, "minutes 1..59 of the first hour");
    assert_eq!(series[1]["events"], 600);
    assert_eq!(series[1]["cost_usd"], 0.15);
    assert_eq!(
        series[1]["flags_by_severity"],
        json!({"critical": 30, "high": 30})
    );

    for query in [
        "bucket=week",
        "from=later",
        "from=2026-11-22T03:00:00Z&to=2026-11-22T00:00:00Z",
        "from=2000-01-01T00:00:00Z&bucket=minute",
    ] {
        let (s, _) = api
            .as_role(
                Role::Viewer,
                "GET",
                &format!("/api/v1/stats/timeseries?{query}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
    }
}
