//! The API's Prometheus metrics, recorded by one middleware and served on their own port.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    pub requests: Family<Labels, Counter>,
    pub latency: Family<Labels, Histogram>,
    pub login_failures: Counter,
    /// Requests refused by the rate limits, by scope (`ip` or `credential`).
    pub rate_limited: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let mut m = Metrics {
            registry: Registry::with_prefix("flagstream_api"),
            requests: Family::default(),
            latency,
            login_failures: Counter::default(),
            rate_limited: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "http_requests",
            "Requests by route, method and status",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Request latency by route",
            m.latency.clone(),
        );
        r.register(
            "login_failures",
            "Failed or throttled logins",
            m.login_failures.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by the rate limits, by scope",
            m.rate_limited.clone(),
        );
        m
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Counts every request by its route template (never the raw path, so labels stay bounded).
pub async fn track(metrics: Arc<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method()).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .get_or_create(&vec![("route", route.clone())])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&vec![
            ("route", route),
            ("method", method),
            ("status", response.status().as_u16().to_string()),
        ])
        .inc();
    response
}

/// HTTP allows any token as a method; an invented one must not become a new series.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
