//! Framed I/O on the control connection, every read bounded in time and size.
//!
//! Generic over the stream type so tests can drive it with in-memory pipes.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ThroughputError;
use super::protocol::{COOKIE_LEN, Cookie, ProtocolError, State, check_frame_len, encode_frame};

/// Runs `fut`, failing with [`ThroughputError::Timeout`] naming `what` after `limit`.
pub(crate) async fn with_timeout<T>(
    limit: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, ThroughputError>>,
) -> Result<T, ThroughputError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(ThroughputError::Timeout(what)),
    }
}

/// Reads exactly `buf.len()` bytes; EOF is reported as [`ThroughputError::Closed`].
async fn read_exact<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut [u8],
) -> Result<(), ThroughputError> {
    match s.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ThroughputError::Closed),
        Err(e) => Err(ThroughputError::Io(e)),
    }
}

/// Reads and validates the 37-byte cookie.
pub(crate) async fn read_cookie<S: AsyncRead + Unpin>(
    s: &mut S,
    limit: Duration,
) -> Result<Cookie, ThroughputError> {
    with_timeout(limit, "cookie", async {
        let mut buf = [0u8; COOKIE_LEN];
        read_exact(s, &mut buf).await?;
        Ok(Cookie::parse(&buf)?)
    })
    .await
}

/// Reads one state byte. Undefined values are a protocol error.
pub(crate) async fn read_state<S: AsyncRead + Unpin>(
    s: &mut S,
    limit: Duration,
    what: &'static str,
) -> Result<State, ThroughputError> {
    with_timeout(limit, what, read_state_untimed(s)).await
}

/// Reads one state byte without a deadline, for use inside `select!` next to timers.
/// Cancel-safe: a single-byte read either completes or consumes nothing.
pub(crate) async fn read_state_untimed<S: AsyncRead + Unpin>(
    s: &mut S,
) -> Result<State, ThroughputError> {
    let mut b = [0u8; 1];
    let n = s.read(&mut b).await?;
    if n == 0 {
        return Err(ThroughputError::Closed);
    }
    State::from_byte(b[0]).ok_or(ThroughputError::Protocol(ProtocolError::UnknownState(
        b[0] as i8,
    )))
}

/// Writes one state byte.
pub(crate) async fn write_state<S: AsyncWrite + Unpin>(
    s: &mut S,
    state: State,
    limit: Duration,
) -> Result<(), ThroughputError> {
    with_timeout(limit, "write state", async {
        s.write_all(&[state.to_byte()]).await?;
        Ok(())
    })
    .await
}

/// Reads one length-prefixed JSON message body (not parsed), at most `max_len` bytes.
/// The buffer is allocated only after the length passed the check, so a peer cannot
/// make us allocate more than `max_len`.
pub(crate) async fn read_frame<S: AsyncRead + Unpin>(
    s: &mut S,
    max_len: usize,
    limit: Duration,
    what: &'static str,
) -> Result<Vec<u8>, ThroughputError> {
    with_timeout(limit, what, async {
        let mut prefix = [0u8; 4];
        read_exact(s, &mut prefix).await?;
        let len = check_frame_len(prefix, max_len)?;
        let mut body = vec![0u8; len];
        read_exact(s, &mut body).await?;
        Ok(body)
    })
    .await
}

/// Writes one length-prefixed JSON message.
pub(crate) async fn write_frame<S: AsyncWrite + Unpin>(
    s: &mut S,
    value: &Value,
    limit: Duration,
) -> Result<(), ThroughputError> {
    let frame = encode_frame(value);
    with_timeout(limit, "write message", async {
        s.write_all(&frame).await?;
        Ok(())
    })
    .await
}

/// Reads the two 4-byte big-endian integers that follow [`State::ServerError`].
pub(crate) async fn read_server_error<S: AsyncRead + Unpin>(
    s: &mut S,
    limit: Duration,
) -> ThroughputError {
    let r = with_timeout(limit, "server error code", async {
        let mut b = [0u8; 8];
        read_exact(s, &mut b).await?;
        let code = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let errno = i32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        Ok((code, errno))
    })
    .await;
    match r {
        Ok((code, errno)) => ThroughputError::ServerError { code, errno },
        Err(e) => e,
    }
}

/// Writes [`State::ServerError`] with iperf3's `i_errno` and an `errno` of 0.
pub(crate) async fn write_server_error<S: AsyncWrite + Unpin>(
    s: &mut S,
    code: i32,
    limit: Duration,
) -> Result<(), ThroughputError> {
    let mut msg = [0u8; 9];
    msg[0] = State::ServerError.to_byte();
    msg[1..5].copy_from_slice(&code.to_be_bytes());
    with_timeout(limit, "write server error", async {
        s.write_all(&msg).await?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::duplex;

    const T: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn frame_round_trip() {
        let (mut a, mut b) = duplex(1024);
        write_frame(&mut a, &json!({"x": 1}), T)
            .await
            .expect("write");
        let body = read_frame(&mut b, 100, T, "test").await.expect("read");
        assert_eq!(body, br#"{"x":1}"#);
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_allocating() {
        let (mut a, mut b) = duplex(1024);
        a.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.expect("write");
        let err = read_frame(&mut b, 8192, T, "params").await;
        assert!(matches!(
            err,
            Err(ThroughputError::Protocol(ProtocolError::TooLong { .. }))
        ));
    }

    #[tokio::test]
    async fn truncated_frame_then_close() {
        let (mut a, mut b) = duplex(1024);
        a.write_all(&[0, 0, 0, 10, b'{']).await.expect("write");
        drop(a);
        let err = read_frame(&mut b, 8192, T, "params").await;
        assert!(matches!(err, Err(ThroughputError::Closed)), "{err:?}");
    }

    #[tokio::test]
    async fn stalled_peer_times_out() {
        let (mut a, mut b) = duplex(1024);
        a.write_all(&[0, 0, 0, 10, b'{']).await.expect("write");
        let err = read_frame(&mut b, 8192, T, "params").await;
        assert!(
            matches!(err, Err(ThroughputError::Timeout("params"))),
            "{err:?}"
        );
        let err = read_cookie(&mut b, T).await;
        assert!(
            matches!(err, Err(ThroughputError::Timeout("cookie"))),
            "{err:?}"
        );
        drop(a);
    }

    #[tokio::test]
    async fn states_and_server_error() {
        let (mut a, mut b) = duplex(1024);
        write_state(&mut a, State::AccessDenied, T)
            .await
            .expect("write");
        assert_eq!(
            read_state(&mut b, T, "state").await.expect("read"),
            State::AccessDenied
        );
        write_server_error(&mut a, 13, T).await.expect("write");
        assert_eq!(
            read_state(&mut b, T, "state").await.expect("read"),
            State::ServerError
        );
        let e = read_server_error(&mut b, T).await;
        assert!(matches!(
            e,
            ThroughputError::ServerError { code: 13, errno: 0 }
        ));
        a.write_all(&[3]).await.expect("write");
        assert!(matches!(
            read_state(&mut b, T, "state").await,
            Err(ThroughputError::Protocol(ProtocolError::UnknownState(3)))
        ));
    }
}
