//! The separate listener for Prometheus and liveness probes, kept off the service's own port.

use std::net::SocketAddr;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// `/metrics` (OpenMetrics text from `render`) and `/health`.
pub fn router<F>(render: F) -> Router
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = render();
                async move {
                    (
                        [(
                            CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
        .route("/health", get(|| async { "ok" }))
}

/// Serves [`router`] on `addr` until `shutdown`; returns the bound address (port 0 picks one).
/// A listener that fails later is logged, not fatal: the service's own work goes on.
pub async fn serve<F>(
    addr: SocketAddr,
    render: F,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr>
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, router(render))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}
