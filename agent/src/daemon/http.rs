//! HTTP endpoints: `/metrics`, `/healthz`, `/readyz`, `/report`.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::metrics::{encode_openmetrics, encode_text};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

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

/// Serves until `shutdown` is cancelled; open connections are given a moment to finish.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn index() -> &'static str {
    "linkmeter-agent: /metrics /healthz /readyz /report\n"
}

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let encoded = if wants_openmetrics {
        encode_openmetrics(s.metrics.registry()).map(|b| (OPENMETRICS, b))
    } else {
        encode_text(s.metrics.registry()).map(|b| (TEXT, b))
    };
    match encoded {
        Ok((ct, body)) => ([(header::CONTENT_TYPE, ct)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
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

async fn report(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let status = s.status();
    let body = match serde_json::to_vec(&status) {
        Ok(b) => b,
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode report\n").into_response();
        }
    };
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let json = HeaderValue::from_static("application/json");
    if gzip {
        let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::default());
        if enc.write_all(&body).is_ok()
            && let Ok(zipped) = enc.finish()
        {
            return (
                [
                    (header::CONTENT_TYPE, json),
                    (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
                ],
                zipped,
            )
                .into_response();
        }
    }
    ([(header::CONTENT_TYPE, json)], body).into_response()
}

/// True when an `Accept-Encoding` value allows gzip (and does not give it q=0).
fn accepts_gzip(v: &str) -> bool {
    v.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let coding = it.next().unwrap_or("");
        let zero_q = it.any(|p| {
            p.strip_prefix("q=")
                .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero_q
    })
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn accept_encoding() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
    }
}
