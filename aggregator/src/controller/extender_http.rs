//! The extender's HTTP server (`--extender-listen`): `POST /filter` and
//! `POST /prioritize` as kube-scheduler calls them, answered from this replica's own
//! caches (every replica serves, leader or not). Bodies above `--extender-max-body` are
//! refused with 413 before they are read whole; a request takes at most
//! [`REQUEST_TIMEOUT`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::extender;

use super::shared::Shared;

/// Longest time one request may take, reading the body included; kube-scheduler's own
/// default timeout is 5 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The routes.
pub fn router(shared: Arc<Shared>, max_body: usize) -> Router {
    Router::new()
        .route("/filter", post(filter))
        .route("/prioritize", post(prioritize))
        .route("/", get(index))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(shared)
}

async fn index() -> &'static str {
    "linkmeter-aggregator extender: POST /filter, POST /prioritize (kube-scheduler extender protocol)\n"
}

async fn filter(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    // Reservations are only known once the pods are listed.
    let world = if s.pods.is_ready() { s.world() } else { None };
    let pods = s.placed_pods();
    let result = extender::filter(world.as_deref(), &pods, &body);
    let ok = result.error.is_empty();
    if !ok {
        tracing::warn!(verb = "filter", error = %result.error, "extender request not served");
    }
    let response = json(&result);
    s.metrics
        .extender_request("filter", ok, started.elapsed().as_secs_f64());
    response
}

async fn prioritize(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    // Reservations are only known once the pods are listed.
    let world = if s.pods.is_ready() { s.world() } else { None };
    let pods = s.placed_pods();
    let (ok, response) = match extender::prioritize(world.as_deref(), &pods, &body) {
        Ok(list) => (true, json(&list)),
        Err(e) => {
            tracing::warn!(verb = "prioritize", error = %e, "extender request not served");
            (
                false,
                (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
            )
        }
    };
    s.metrics
        .extender_request("prioritize", ok, started.elapsed().as_secs_f64());
    response
}

/// A JSON answer. The types serialise without fail (strings, integers, raw JSON that
/// was valid when read), so the 500 is only a guard.
fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use linkmeter_runtime::metrics_http::serve;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    use super::*;

    /// POSTs `body` to `path`; the status and the body of the answer.
    async fn post(router: Router, path: &str, body: &[u8]) -> (u16, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, router, stop.clone()));
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.expect("head");
        // A refused body may be cut off by the server: that is its right.
        let _ = conn.write_all(body).await;
        let mut raw = Vec::new();
        let _ = conn.read_to_end(&mut raw).await;
        stop.cancel();
        server.await.expect("joins").expect("serves");
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        (status, body)
    }

    fn ready() -> Arc<Shared> {
        let shared = Arc::new(Shared::new());
        shared.pods.begin_relist();
        shared.pods.finish_relist();
        shared
    }

    #[tokio::test]
    async fn verbs_answer_and_bad_requests_get_errors() {
        let shared = ready();
        let plain = br#"{"Pod": {"metadata": {"name": "p"}}, "NodeNames": ["a", "b"]}"#;
        let (code, body) = post(router(shared.clone(), 1 << 20), "/filter", plain).await;
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(r#""NodeNames":["a","b"]"#), "{body}");
        let (code, body) = post(router(shared.clone(), 1 << 20), "/prioritize", plain).await;
        assert_eq!(code, 200);
        assert_eq!(body, r#"[{"Host":"a","Score":0},{"Host":"b","Score":0}]"#);

        // Not JSON: filter answers with Error set, prioritize with 400.
        let (code, body) = post(router(shared.clone(), 1 << 20), "/filter", b"{oops").await;
        assert_eq!(code, 200);
        assert!(body.contains("not ExtenderArgs JSON"), "{body}");
        let (code, _) = post(router(shared.clone(), 1 << 20), "/prioritize", b"{oops").await;
        assert_eq!(code, 400);

        // Too large: refused before it is read whole.
        let huge = vec![b' '; 64 * 1024];
        let (code, _) = post(router(shared.clone(), 1024), "/filter", &huge).await;
        assert_eq!(code, 413);

        // An annotated pod before the pods are listed: an error, not a guess.
        let cold = Arc::new(Shared::new());
        let annotated = br#"{"Pod": {"metadata": {"name": "p", "annotations":
            {"linkmeter.dev/min-bandwidth": "1M"}}}, "NodeNames": ["a"]}"#;
        let (_, body) = post(router(cold, 1 << 20), "/filter", annotated).await;
        assert!(body.contains("no cluster view yet"), "{body}");
    }
}
