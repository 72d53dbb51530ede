//! HTTP: `/metrics` (Prometheus text 0.0.4, or OpenMetrics when asked; gzip when
//! accepted), `/healthz` (200 while the process runs), `/readyz` (200 once both watches
//! listed and one computation ran).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use linkmeter_runtime::metrics_http;

use super::shared::Shared;

/// The routes over the shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/", get(index))
        .with_state(shared)
}

async fn index() -> &'static str {
    "linkmeter-aggregator: /metrics /healthz /readyz\n"
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    match s.not_ready_reason() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    s.metrics
        .cached(s.topologies.len(), s.topologies.malformed_len());
    metrics_http::metrics_response(s.metrics.registry(), &headers)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};
    use linkmeter_runtime::metrics_http::{OPENMETRICS, TEXT, serve};
    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    use super::*;

    async fn get(
        shared: Arc<Shared>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, router(shared), stop.clone()));
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        conn.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.expect("read");
        stop.cancel();
        server.await.expect("joins").expect("serves");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header end");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status");
        let mut map = HeaderMap::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                map.insert(
                    header::HeaderName::from_bytes(k.trim().as_bytes()).expect("name"),
                    HeaderValue::from_str(v.trim()).expect("value"),
                );
            }
        }
        let mut body = raw[split + 4..].to_vec();
        if map
            .get(header::TRANSFER_ENCODING)
            .is_some_and(|v| v == "chunked")
        {
            body = unchunk(&body);
        }
        (status, map, body)
    }

    fn unchunk(mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let end = b.windows(2).position(|w| w == b"\r\n").expect("size line");
            let size =
                usize::from_str_radix(std::str::from_utf8(&b[..end]).expect("utf8").trim(), 16)
                    .expect("hex");
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&b[end + 2..end + 2 + size]);
            b = &b[end + 4 + size..];
        }
    }

    #[tokio::test]
    async fn endpoints() {
        let shared = Arc::new(Shared::new());
        let (code, _, body) = get(shared.clone(), "/healthz", &[]).await;
        assert_eq!((code, body.as_slice()), (200, &b"ok\n"[..]));

        let (code, _, body) = get(shared.clone(), "/readyz", &[]).await;
        assert_eq!(code, 503);
        assert_eq!(body, b"waiting for the first list of Nodes\n");
        shared.nodes.begin_relist();
        shared.nodes.finish_relist();
        shared.topologies.begin_relist();
        shared.topologies.finish_relist();
        let (code, _, body) = get(shared.clone(), "/readyz", &[]).await;
        assert_eq!(code, 503);
        assert_eq!(body, b"waiting for the first computation\n");
        shared.mark_computed();
        let (code, _, _) = get(shared.clone(), "/readyz", &[]).await;
        assert_eq!(code, 200);

        shared.metrics.set_leader(true);
        let (code, h, body) = get(shared.clone(), "/metrics", &[]).await;
        assert_eq!(code, 200);
        assert_eq!(h.get(header::CONTENT_TYPE).expect("type"), TEXT);
        let text = String::from_utf8(body).expect("utf8");
        assert!(text.contains("linkmeter_aggregator_is_leader 1"), "{text}");

        let (code, h, zipped) =
            get(shared.clone(), "/metrics", &[("Accept-Encoding", "gzip")]).await;
        assert_eq!(code, 200);
        assert_eq!(h.get(header::CONTENT_ENCODING).expect("encoding"), "gzip");
        assert_eq!(&zipped[..2], &[0x1f, 0x8b]);
        assert!(zipped.len() < text.len());

        let (_, h, body) = get(
            shared,
            "/metrics",
            &[("Accept", "application/openmetrics-text; version=1.0.0")],
        )
        .await;
        assert_eq!(h.get(header::CONTENT_TYPE).expect("type"), OPENMETRICS);
        assert!(String::from_utf8(body).expect("utf8").ends_with("# EOF\n"));
    }
}
