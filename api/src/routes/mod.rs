mod flags;
mod health;

use axum::routing::get;
use axum::Router;

use crate::state::AppState;
use crate::Error;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/api/v1/flags", get(flags::list))
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .with_state(state)
}
