//! Serving Prometheus metrics over HTTP: which format a scraper asked for, the classic
//! text format (0.0.4) made from prometheus-client's OpenMetrics output, and gzip for
//! every reply whose client accepts it (tower-http's compression layer).

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// `Content-Type` of an OpenMetrics reply.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of a classic Prometheus text reply.
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// gzip for the replies whose request's `Accept-Encoding` allows it (Prometheus asks on
/// every scrape: on a 10 Mbit/s home uplink a 40 KB scrape every 15 s is ~10 MB an
/// hour), at the fastest level — metrics text shrinks about tenfold even so. The layer
/// negotiates (q-values, `identity`), says `Vary: accept-encoding`, and leaves bodies
/// under 32 bytes alone.
pub fn compression() -> CompressionLayer {
    CompressionLayer::new().quality(CompressionLevel::Fastest)
}

/// Serves `router` on `listener`, compressed as [`compression`] says, until `shutdown` is
/// cancelled, then stops accepting and lets open connections finish (the caller bounds
/// how long it waits).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router.layer(compression()))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// The `/metrics` reply for `registry`: OpenMetrics when `Accept` names it, else the
/// classic text format; 500 when encoding fails.
pub fn metrics_response(registry: &Registry, headers: &HeaderMap) -> Response {
    let encoded = if wants_openmetrics(headers) {
        encode_openmetrics(registry).map(|b| (OPENMETRICS, b))
    } else {
        encode_text(registry).map(|b| (TEXT, b))
    };
    match encoded {
        Ok((content_type, body)) => {
            body_response(HeaderValue::from_static(content_type), body.into_bytes())
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

/// A 200 reply with `body` of `content_type`.
pub fn body_response(content_type: HeaderValue, body: Vec<u8>) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// Whether the request's `Accept` asks for OpenMetrics.
pub fn wants_openmetrics(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT).is_some_and(|a| a.contains("application/openmetrics-text"))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Encodes the registry as OpenMetrics text (what prometheus-client writes).
pub fn encode_openmetrics(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

/// Encodes the registry in the classic Prometheus text format (0.0.4).
///
/// The two formats differ, for what linkmeter exports, only in that OpenMetrics names
/// a counter family without `_total` (its samples carry it), ends with `# EOF`, and may
/// carry `# UNIT` lines; the classic format names the family as its samples.
pub fn encode_text(registry: &Registry) -> Result<String, std::fmt::Error> {
    Ok(openmetrics_to_text(&encode_openmetrics(registry)?))
}

/// The conversion behind [`encode_text`], on text.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.strip_suffix(" counter"))
        {
            // The HELP line just before names the family too.
            let help_prefix = format!("# HELP {name} ");
            if let Some(prev) = out.last_mut()
                && let Some(help) = prev.strip_prefix(&help_prefix)
            {
                *prev = format!("# HELP {name}_total {help}");
            }
            out.push(format!("# TYPE {name}_total counter"));
            continue;
        }
        out.push(line.to_owned());
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn counters_are_renamed_for_the_text_format() {
        let om = "# HELP x Things.\n# TYPE x counter\n# UNIT x things\nx_total 3\n\
                  # HELP g G.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n"
        );
    }

    fn registry() -> Registry {
        let mut r = Registry::with_prefix("t");
        let c = Counter::<u64>::default();
        c.inc();
        r.register("probes", "Probes sent", c);
        r
    }

    fn request(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_static(v)))
            .collect()
    }

    async fn body(r: Response) -> Vec<u8> {
        axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec()
    }

    fn names(r: &Response) -> Vec<&str> {
        r.headers().keys().map(header::HeaderName::as_str).collect()
    }

    #[tokio::test]
    async fn text_by_default_openmetrics_when_asked() {
        let reg = registry();
        let r = metrics_response(&reg, &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(names(&r), ["content-type"]);
        assert_eq!(r.headers()[header::CONTENT_TYPE], TEXT);
        let text = String::from_utf8(body(r).await).expect("utf8");
        assert!(
            text.contains("# TYPE t_probes_total counter\nt_probes_total 1\n"),
            "{text}"
        );

        let asks = request(&[(
            header::ACCEPT,
            "application/openmetrics-text; version=1.0.0",
        )]);
        let r = metrics_response(&reg, &asks);
        assert_eq!(r.headers()[header::CONTENT_TYPE], OPENMETRICS);
        let om = String::from_utf8(body(r).await).expect("utf8");
        assert!(om.ends_with("# EOF\n"), "{om}");
    }

    /// A registry whose text is well above the layer's 32-byte floor.
    fn big_registry() -> Registry {
        let mut r = Registry::with_prefix("t");
        for i in 0..200 {
            let c = Counter::<u64>::default();
            c.inc();
            r.register(format!("probes_{i}"), "Probes sent to one peer", c);
        }
        r
    }

    /// GET /metrics through the router with the compression layer, as `serve` runs it.
    async fn get(reg: &Arc<Registry>, accept_encoding: Option<&'static str>) -> Response {
        let reg = reg.clone();
        let router = Router::new()
            .route(
                "/metrics",
                axum::routing::get(move |h: HeaderMap| async move { metrics_response(&reg, &h) }),
            )
            .layer(compression());
        let mut req = axum::http::Request::get("/metrics");
        if let Some(v) = accept_encoding {
            req = req.header(header::ACCEPT_ENCODING, v);
        }
        let req = req.body(axum::body::Body::empty()).expect("request");
        router.oneshot(req).await.expect("infallible")
    }

    #[tokio::test]
    async fn gzip_exactly_when_the_client_accepts_it() {
        let reg = Arc::new(big_registry());
        let plain = body(get(&reg, None).await).await;
        for (accept, zipped) in [
            (Some("gzip"), true),
            (Some("deflate, GZIP;q=0.5"), true),
            (Some("gzip;q=0"), false),
            (Some("br, identity"), false),
            (None, false),
        ] {
            let r = get(&reg, accept).await;
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()[header::CONTENT_TYPE], TEXT, "{accept:?}");
            assert_eq!(
                r.headers()
                    .get(header::VARY)
                    .map(|v| v.to_str().unwrap_or("?")),
                Some("accept-encoding"),
                "{accept:?}"
            );
            let encoding = r.headers().get(header::CONTENT_ENCODING).cloned();
            let got = body(r).await;
            if zipped {
                assert_eq!(encoding.as_ref().map(|v| v.as_bytes()), Some(&b"gzip"[..]));
                assert!(
                    got.len() * 5 < plain.len(),
                    "{} of {} bytes",
                    got.len(),
                    plain.len()
                );
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(got.as_slice())
                    .read_to_end(&mut back)
                    .expect("decodes");
                assert_eq!(back, plain, "{accept:?}");
            } else {
                assert_eq!(encoding, None, "{accept:?}");
                assert_eq!(got, plain, "{accept:?}");
            }
        }
    }
}
