//! Serving Prometheus metrics over HTTP: which format a scraper asked for, the classic
//! text format (0.0.4) made from prometheus-client's OpenMetrics output, and gzip when
//! the client accepts it.

use std::io::Write;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use flate2::Compression;

/// `Content-Type` of an OpenMetrics reply.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of a classic Prometheus text reply.
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether and how a reply is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gzip {
    /// Never: the body goes as it is, with no `Vary`.
    Never,
    /// At `level` when the request's `Accept-Encoding` allows gzip. With `vary`, every
    /// reply (compressed or not) says `Vary: accept-encoding`, for caches in between.
    WhenAccepted {
        /// The encoder's level.
        level: Compression,
        /// Whether replies carry `Vary: accept-encoding`.
        vary: bool,
    },
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting
/// and lets open connections finish (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// The `/metrics` reply for `registry`: OpenMetrics when `Accept` names it, else the
/// classic text format; compressed as `gzip` says; 500 when encoding fails.
pub fn metrics_response(registry: &Registry, headers: &HeaderMap, gzip: Gzip) -> Response {
    let encoded = if wants_openmetrics(headers) {
        encode_openmetrics(registry).map(|b| (OPENMETRICS, b))
    } else {
        encode_text(registry).map(|b| (TEXT, b))
    };
    match encoded {
        Ok((content_type, body)) => body_response(
            headers,
            HeaderValue::from_static(content_type),
            body.into_bytes(),
            gzip,
        ),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

/// A 200 reply with `body` of `content_type`, gzipped when `gzip` and the request's
/// `Accept-Encoding` allow it. Should compression ever fail, the body goes as it is.
pub fn body_response(
    headers: &HeaderMap,
    content_type: HeaderValue,
    body: Vec<u8>,
    gzip: Gzip,
) -> Response {
    let (level, vary) = match gzip {
        Gzip::Never => (None, false),
        Gzip::WhenAccepted { level, vary } => (Some(level), vary),
    };
    let zipped = level
        .filter(|_| header_accepts_gzip(headers))
        .and_then(|level| compress(&body, level).ok());
    let compressed = zipped.is_some();
    let mut response = zipped.unwrap_or(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    if compressed {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if vary {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether the request's `Accept` asks for OpenMetrics.
pub fn wants_openmetrics(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT).is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Whether the request's `Accept-Encoding` allows gzip.
pub fn header_accepts_gzip(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT_ENCODING).is_some_and(accepts_gzip)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// True when an `Accept-Encoding` value allows gzip (and does not give it q=0).
pub fn accepts_gzip(v: &str) -> bool {
    v.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let coding = it.next().unwrap_or_default();
        let refused = it.any(|p| {
            p.strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// `data` as one gzip member at `level`.
pub fn compress(data: &[u8], level: Compression) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), level);
    enc.write_all(data)?;
    enc.finish()
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

    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[test]
    fn accept_encoding() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(accepts_gzip("deflate, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip(""));
    }

    #[test]
    fn counters_are_renamed_for_the_text_format() {
        let om = "# HELP x Things.\n# TYPE x counter\n# UNIT x things\nx_total 3\n\
                  # HELP g G.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n"
        );
    }

    #[test]
    fn gzip_round_trips_and_shrinks_metrics_text() {
        let text: String = (0..500)
            .map(|i| {
                format!("linkmeter_writes_total{{kind=\"ClusterTopology\",result=\"ok\"}} {i}\n")
            })
            .collect();
        let packed = compress(text.as_bytes(), Compression::fast()).expect("compresses");
        assert!(
            packed.len() * 5 < text.len(),
            "{} of {} bytes",
            packed.len(),
            text.len()
        );
        let mut back = String::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_string(&mut back)
            .expect("decodes");
        assert_eq!(back, text);
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
        let r = metrics_response(&reg, &HeaderMap::new(), Gzip::Never);
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
        let r = metrics_response(&reg, &asks, Gzip::Never);
        assert_eq!(r.headers()[header::CONTENT_TYPE], OPENMETRICS);
        let om = String::from_utf8(body(r).await).expect("utf8");
        assert!(om.ends_with("# EOF\n"), "{om}");
    }

    #[tokio::test]
    async fn gzip_only_when_allowed_and_accepted() {
        let reg = registry();
        let gz = request(&[(header::ACCEPT_ENCODING, "gzip")]);
        let r = metrics_response(&reg, &gz, Gzip::Never);
        assert_eq!(names(&r), ["content-type"]);

        let level = Compression::fast();
        let r = metrics_response(&reg, &gz, Gzip::WhenAccepted { level, vary: true });
        assert_eq!(names(&r), ["content-type", "content-encoding", "vary"]);
        assert_eq!(r.headers()[header::VARY], "accept-encoding");
        assert_eq!(&body(r).await[..2], &[0x1f, 0x8b]);

        let r = metrics_response(
            &reg,
            &HeaderMap::new(),
            Gzip::WhenAccepted { level, vary: true },
        );
        assert_eq!(names(&r), ["content-type", "vary"]);

        let json = HeaderValue::from_static("application/json");
        let r = body_response(
            &gz,
            json,
            b"{}".to_vec(),
            Gzip::WhenAccepted { level, vary: false },
        );
        assert_eq!(names(&r), ["content-type", "content-encoding"]);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}
