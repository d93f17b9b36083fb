use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flagstream_api::auth::Role;

use crate::{text, Api};

/// Log lines written while the guard lives, on this thread (the test runtime's only one).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

async fn request_id(api: &Api, header: Option<&str>) -> String {
    let mut request = Request::builder().uri("/health");
    if let Some(h) = header {
        request = request.header("x-request-id", h);
    }
    let response = api.send(request.body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let api = Api::new().await;
    let first = request_id(&api, None).await;
    let second = request_id(&api, None).await;
    assert_eq!(first.len(), 32, "{first}");
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
    assert_ne!(first, second);
    // A proxy's plain id is kept; anything long or odd is replaced.
    assert_eq!(
        request_id(&api, Some("edge-42.a:b_c")).await,
        "edge-42.a:b_c"
    );
    for odd in ["x".repeat(65), "a b".to_owned(), "{\"x\":1}".to_owned()] {
        let id = request_id(&api, Some(&odd)).await;
        assert_ne!(id, odd);
        assert_eq!(id.len(), 32);
    }
}

#[tokio::test]
async fn a_server_error_is_logged_once_with_route_request_id_and_cause() {
    let api = Api::new().await;
    // A schema the running build does not expect: the flag search fails in the database.
    sqlx::query("ALTER TABLE flags RENAME TO flags_moved")
        .execute(api.pool())
        .await
        .unwrap();
    let logs = Captured::default();
    let guard = logs.install();
    let response = api
        .send(
            Request::builder()
                .uri("/api/v1/flags?severity=high")
                .header(
                    "authorization",
                    format!("Bearer {}", api.token(Role::Viewer)),
                )
                .header("x-request-id", "incident-7")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    drop(guard);
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()["x-request-id"], "incident-7");
    let body = text(response).await;
    assert!(body.contains("internal error"), "{body}");
    assert!(!body.contains("flags"), "no internals in the body: {body}");

    let failed: Vec<_> = logs
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "request failed")
        .collect();
    assert_eq!(failed.len(), 1, "logged once: {failed:?}");
    let line = &failed[0];
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["fields"]["status"], 500);
    assert!(
        line["fields"]["cause"]
            .as_str()
            .unwrap()
            .contains("\"flags\" does not exist"),
        "{line}"
    );
    // Where the failing statement ran: the flag search's page query.
    assert!(
        line["fields"]["cause"]
            .as_str()
            .unwrap()
            .contains("at api/src/routes/flags.rs:"),
        "{line}"
    );
    assert_eq!(line["span"]["request_id"], "incident-7");
    assert_eq!(line["span"]["route"], "/api/v1/flags");
    assert_eq!(line["span"]["method"], "GET");
    // A client error is the caller's, not the server's: no error line for it.
    let guard = logs.install();
    let (status, _) = api
        .as_role(Role::Viewer, "GET", "/api/v1/flags?severity=bogus", None)
        .await;
    drop(guard);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let failed = logs
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "request failed")
        .count();
    assert_eq!(failed, 1);
}
