use axum::http::StatusCode;
use flagstream_api::auth::Role;
use sqlx::postgres::PgPoolOptions;

use crate::{database, Api};

#[tokio::test]
async fn health_is_always_ok() {
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let (status, body) = Api::with_pool(pool, &[])
        .call("GET", "/health", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn ready_reports_each_dependency() {
    let api = Api::with_pool(database(true).await, &[]);
    let (status, body) = api.call("GET", "/ready", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["checks"]["migrations"]["status"], "ok");

    let api = Api::with_pool(database(false).await, &[]);
    let (status, body) = api.call("GET", "/ready", None, None).await;
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
    let (status, body) = Api::with_pool(pool, &[])
        .call("GET", "/ready", None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["database"]["status"], "down");
    assert!(
        !body.to_string().contains("hunter2"),
        "no credentials in {body}"
    );
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_hardened_headers() {
    let api = Api::new().await;
    let (status, body) = api.call("GET", "/nope", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = api
        .as_role(Role::Admin, "DELETE", "/api/v1/flags", None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");

    // Malformed JSON, the wrong content type, a body over the limit, a bad query value.
    let token = api.token(Role::Admin);
    let request = |body: &str, content_type: &str| {
        axum::http::Request::builder()
            .method("POST")
            .uri("/api/v1/rules")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    };
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(2 << 20));
    for (body, content_type, expected) in [
        ("{not json", "application/json", StatusCode::BAD_REQUEST),
        ("{}", "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            huge.as_str(),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let response = api.send(request(body, content_type)).await;
        assert_eq!(response.status(), expected);
        let headers = response.headers().clone();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(body["error"]["message"].is_string(), "{body}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
    }
    let (status, body) = api
        .as_role(Role::Viewer, "GET", "/api/v1/flags?limit=abc", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_request");
}

#[tokio::test]
async fn cors_allows_only_listed_origins() {
    let api = Api::with_pool(
        database(true).await,
        &["--cors-origins", "https://soc.example.com"],
    );
    for (origin, allowed) in [
        ("https://soc.example.com", true),
        ("https://evil.example.net", false),
    ] {
        let response = api
            .send(
                axum::http::Request::builder()
                    .method("OPTIONS")
                    .uri("/api/v1/flags")
                    .header("origin", origin)
                    .header("access-control-request-method", "GET")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_some(),
            allowed,
            "{origin}"
        );
    }
}

#[tokio::test]
async fn openapi_and_docs_are_generated_from_the_route_table() {
    let api = Api::with_pool(database(true).await, &[]);
    let (status, doc) = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for e in flagstream_api::endpoints() {
        let op = &doc["paths"][e.path][e.method.to_ascii_lowercase()];
        assert_eq!(op["summary"], e.summary, "{} {}", e.method, e.path);
        match e.role {
            Some(role) => assert_eq!(op["x-required-role"], role.as_str()),
            None => assert!(op["x-required-role"].is_null()),
        }
    }
    let response = api
        .send(
            axum::http::Request::get("/api/v1/docs")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    // The README's matrix is the one the code generates.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(&flagstream_api::matrix()),
        "README's role matrix is stale: paste the output of `flagstream-api routes`"
    );
}

/// The dashboards and alert rules shipped in `helm/flagstream/` name only API metrics this
/// binary exports (the consumer's tests check the rest, and evaluate every expression in a
/// real Prometheus).
#[tokio::test]
async fn dashboards_and_alerts_name_only_metrics_the_api_exports() {
    let api = Api::new().await;
    api.call("GET", "/api/v1/flags", None, None).await;
    let exposition = api.state.metrics.render();
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/flagstream");
    let mut shipped = std::fs::read_to_string(chart.join("alerts/flagstream-rules.yml")).unwrap();
    for dashboard in std::fs::read_dir(chart.join("dashboards")).unwrap() {
        shipped.push_str(&std::fs::read_to_string(dashboard.unwrap().path()).unwrap());
    }
    let mut named: Vec<&str> = shipped
        .match_indices("flagstream_api_")
        .map(|(at, _)| {
            let tail = &shipped[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            &tail[..end]
        })
        .collect();
    named.sort_unstable();
    named.dedup();
    assert!(named.len() >= 3, "{named:?}");
    for name in named {
        let exported = [format!("\n{name}{{"), format!("\n{name} ")]
            .iter()
            .any(|sample| exposition.contains(sample.as_str()));
        assert!(exported, "{name} is not exported:\n{exposition}");
    }
}

/// `flagstream-api healthcheck`, the image's HEALTHCHECK, against a served API.
#[tokio::test]
async fn healthcheck_passes_on_2xx_only() {
    let api = Api::with_pool(database(true).await, &[]);
    let hardening = flagstream_api::hardening(&crate::config(&[]));
    let app = flagstream_api::router(api.state.clone(), &hardening).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let probe = flagstream_api::healthcheck::probe;
    probe(&format!("http://{address}/health")).await.unwrap();
    probe(&format!("http://{address}/ready")).await.unwrap();
    let missing = probe(&format!("http://{address}/nope")).await.unwrap_err();
    assert!(missing.to_string().contains("answered 404"), "{missing}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(probe(&format!("http://{closed}/health")).await.is_err());
    assert!(probe("https://example.invalid/").await.is_err());
}
