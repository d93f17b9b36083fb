use axum::http::StatusCode;
use flagstream_api::TokenDigest;
use sqlx::PgPool;

use crate::{call, database, state, TOKEN};

async fn seed(pool: &PgPool, n: i64) {
    sqlx::query(
        "INSERT INTO flags (event_id, event_time, src_ip, provider, model, score, severity,
                            kafka_topic, kafka_partition, kafka_offset)
         SELECT 'ev-' || i, '2026-11-22T00:00:00Z'::timestamptz + i * interval '1 minute',
                ('192.168.0.' || i)::inet, 'openai', 'gpt-4o', 40, 'high', 't', 0, i
         FROM generate_series(1, $1) AS i",
    )
    .bind(n)
    .execute(pool)
    .await
    .expect("seed flags");
    sqlx::query(
        "INSERT INTO detections (flag_id, rule_id, field, span_start, span_end, excerpt)
         SELECT id, 'credentials.keywords', 'prompt', 3, 11, 'my pa****** is' FROM flags",
    )
    .execute(pool)
    .await
    .expect("seed detections");
}

#[tokio::test]
async fn flags_need_the_token() {
    let s = state(database(true).await);
    for token in [
        None,
        Some("wrong-token-0123456789abcdef0123456789abcdef"),
        Some(""),
    ] {
        let (status, body) = call(&s, "GET", "/api/v1/flags", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn flags_are_listed_newest_first_with_their_detections() {
    let pool = database(true).await;
    seed(&pool, 3).await;
    let (status, body) = call(&state(pool), "GET", "/api/v1/flags?limit=2", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let flags = body["flags"].as_array().unwrap();
    let ids: Vec<&str> = flags
        .iter()
        .map(|f| f["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ev-3", "ev-2"]);
    assert_eq!(flags[0]["src_ip"], "192.168.0.3");
    assert_eq!(flags[0]["event_time"], "2026-11-22T00:03:00Z");
    assert_eq!(flags[0]["status"], "new");
    assert_eq!(flags[0]["detections"][0]["rule_id"], "credentials.keywords");
    assert_eq!(flags[0]["detections"][0]["start"], 3);
}

#[tokio::test]
async fn bad_query_parameters_are_422_naming_the_problem() {
    let s = state(database(true).await);
    let (status, body) = call(&s, "GET", "/api/v1/flags?limit=0", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "limit");
    for uri in ["/api/v1/flags?limit=lots", "/api/v1/flags?colour=red"] {
        let (status, body) = call(&s, "GET", uri, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
        assert_eq!(body["error"]["code"], "invalid_request", "{uri}");
    }
}

#[test]
fn short_tokens_are_refused() {
    let err = TokenDigest::new("too-short").err().expect("refused");
    assert!(err.to_string().contains("at least 32"), "{err}");
    assert!(
        !err.to_string().contains("too-short"),
        "the token is not echoed"
    );
}
