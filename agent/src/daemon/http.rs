//! HTTP endpoints: `/metrics`, `/healthz`, `/readyz`, `/report` (served by
//! `linkmeter_runtime::metrics_http::serve`, which gzips what the client accepts gzipped).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use linkmeter_runtime::metrics_http;

use super::Shared;

/// The router, over the daemon's shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/report", get(report))
        .route("/", get(index))
        .with_state(shared)
}

async fn index() -> &'static str {
    "linkmeter-agent: /metrics /healthz /readyz /report\n"
}

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    metrics_http::metrics_response(s.metrics.registry(), &headers)
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    match s.health_problem() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    if s.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "first measurement round not finished\n",
        )
            .into_response()
    }
}

async fn report(State(s): State<Arc<Shared>>) -> Response {
    let status = s.status();
    let body = match serde_json::to_vec(&status) {
        Ok(b) => b,
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode report\n").into_response();
        }
    };
    let json = HeaderValue::from_static("application/json");
    metrics_http::body_response(json, body)
}
