//! One span per request (method, route template, request id) and one log line for each
//! server error, so a 5xx in the log can be matched to the response the caller holds.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::method_label;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Why a request failed on the server's side, attached to the response by the error
/// mapping for [`request`] to log; the body never carries it.
#[derive(Debug, Clone)]
pub(crate) struct ErrorCause(pub String);

/// A caller's request id is kept when it is short and plain (a proxy's or a client's id
/// then follows the request into the log); anything else is replaced, so a log line never
/// carries arbitrary caller text.
fn caller_id(request: &Request) -> Option<HeaderValue> {
    let value = request.headers().get(&REQUEST_ID)?;
    let bytes = value.as_bytes();
    let plain = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
    (!bytes.is_empty() && bytes.len() <= 64 && bytes.iter().all(plain)).then(|| value.clone())
}

pub async fn request(mut request: Request, next: Next) -> Response {
    let id = caller_id(&request).unwrap_or_else(|| {
        HeaderValue::from_str(&format!("{:032x}", rand::random::<u128>()))
            .unwrap_or(HeaderValue::from_static("unknown"))
    });
    request.headers_mut().insert(REQUEST_ID.clone(), id.clone());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let id_text = id.to_str().unwrap_or("unknown").to_owned();
    let span = tracing::info_span!(
        "request",
        method = method_label(request.method()),
        route = %route,
        request_id = %id_text,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    if status.is_server_error() {
        let cause = response
            .extensions_mut()
            .remove::<ErrorCause>()
            .map_or_else(String::new, |c| c.0);
        span.in_scope(|| {
            if status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(status = status.as_u16(), %cause, "request failed");
            } else {
                tracing::error!(status = status.as_u16(), %cause, "request failed");
            }
        });
    }
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    response
}
