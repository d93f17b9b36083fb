use axum::http::StatusCode;
use sqlx::postgres::PgPoolOptions;

use crate::{call, database, state};

#[tokio::test]
async fn health_is_always_ok() {
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let (status, body) = call(&state(pool), "GET", "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn ready_reports_each_dependency() {
    let (status, body) = call(&state(database(true).await), "GET", "/ready", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["checks"]["migrations"]["status"], "ok");

    let (status, body) = call(&state(database(false).await), "GET", "/ready", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["checks"]["migrations"]["status"], "pending");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let pool = PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_lazy(&format!("postgres://nobody:hunter2@{closed}/none"))
        .unwrap();
    let (status, body) = call(&state(pool), "GET", "/ready", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["database"]["status"], "down");
    assert!(
        !body.to_string().contains("hunter2"),
        "no credentials in {body}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let s = state(database(true).await);
    let (status, body) = call(&s, "GET", "/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = call(&s, "DELETE", "/api/v1/flags", Some(crate::TOKEN)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
