//! The iperf3 wire protocol for TCP tests, as pure data types and parsers.
//!
//! Nothing here does I/O, so everything a peer can send us is parsed by code that can
//! be unit-, property- and fuzz-tested without sockets (see `fuzz/` at the repo root).
//!
//! The protocol (learnt from esnet/iperf 3.12, `iperf_api.c`, `iperf_client_api.c`,
//! `iperf_server_api.c`):
//!
//! 1. The client opens the control connection and sends a 37-byte cookie (36 printable
//!    characters and a NUL).
//! 2. The server answers with one signed state byte, [`State::ParamExchange`], and the
//!    client sends its test parameters as JSON prefixed by a 4-byte big-endian length.
//! 3. The server sends [`State::CreateStreams`]; the client opens one TCP connection per
//!    stream to the same port, each starting with the same cookie.
//! 4. The server sends [`State::TestStart`] then [`State::TestRunning`]; data flows
//!    (client to server, or server to client in reverse mode).
//! 5. The client decides when the test is over and sends [`State::TestEnd`]; the server
//!    answers [`State::ExchangeResults`], the client sends its results JSON, the server
//!    sends its own, then [`State::DisplayResults`]; the client closes with
//!    [`State::IperfDone`].
//!
//! A busy server answers a new control connection with [`State::AccessDenied`]; a server
//! that rejects the parameters sends [`State::ServerError`] followed by two 4-byte
//! big-endian integers (iperf3's `i_errno` and the OS `errno`).

use serde_json::{Map, Value, json};

/// Length of the cookie on the wire: 36 characters and a terminating NUL.
pub const COOKIE_LEN: usize = 37;

/// iperf3's default TCP port.
pub const DEFAULT_PORT: u16 = 5201;

/// iperf3's default block size for TCP reads and writes (128 KiB).
pub const DEFAULT_BLOCK_LEN: usize = 128 * 1024;

/// iperf3's limit on parallel streams (`MAX_STREAMS`).
pub const MAX_STREAMS: u32 = 128;

/// iperf3's limit on a test's duration in seconds (`MAX_TIME`).
pub const MAX_TIME_SECS: u64 = 86_400;

/// Default cap on the parameter message; iperf3's own is a few hundred bytes.
pub const DEFAULT_MAX_PARAMS_LEN: usize = 8 * 1024;

/// Cap on a results message: 128 streams of ~200 bytes each fit with room to spare.
pub const MAX_RESULTS_LEN: usize = 64 * 1024;

/// iperf3 `i_errno` values we send with [`State::ServerError`] (from `iperf_api.h`).
pub mod ierr {
    /// "number of parallel streams too large".
    pub const NUM_STREAMS: i32 = 6;
    /// "an option you are trying to set is not implemented yet".
    pub const UNIMPLEMENTED: i32 = 13;
    /// "unable to receive parameters from client".
    pub const RECV_PARAMS: i32 = 114;
}

/// Control-channel state byte (iperf3's `signed char state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum State {
    /// Server → client: data may start (`TEST_START`).
    TestStart = 1,
    /// Server → client: the test is running (`TEST_RUNNING`).
    TestRunning = 2,
    /// Client → server: the test is over (`TEST_END`).
    TestEnd = 4,
    /// Server → client: send your parameters (`PARAM_EXCHANGE`).
    ParamExchange = 9,
    /// Server → client: open the data streams (`CREATE_STREAMS`).
    CreateStreams = 10,
    /// Server → client: the server ended the test early (`SERVER_TERMINATE`).
    ServerTerminate = 11,
    /// Client → server: the client ended the test early (`CLIENT_TERMINATE`).
    ClientTerminate = 12,
    /// Server → client: exchange results now (`EXCHANGE_RESULTS`).
    ExchangeResults = 13,
    /// Server → client: results are exchanged (`DISPLAY_RESULTS`).
    DisplayResults = 14,
    /// Not sent on the wire by TCP tests; iperf3's idle state (`IPERF_START`).
    IperfStart = 15,
    /// Client → server: the client is done (`IPERF_DONE`).
    IperfDone = 16,
    /// Server → client: busy, or a data stream's cookie did not match (`ACCESS_DENIED`).
    AccessDenied = -1,
    /// Server → client: followed by `i_errno` and `errno` (`SERVER_ERROR`).
    ServerError = -2,
}

impl State {
    /// Decodes a state byte; `None` for values iperf3 does not define (or defines but
    /// never sends, such as the `STREAM_*` states).
    pub fn from_byte(b: u8) -> Option<State> {
        Some(match b as i8 {
            1 => State::TestStart,
            2 => State::TestRunning,
            4 => State::TestEnd,
            9 => State::ParamExchange,
            10 => State::CreateStreams,
            11 => State::ServerTerminate,
            12 => State::ClientTerminate,
            13 => State::ExchangeResults,
            14 => State::DisplayResults,
            15 => State::IperfStart,
            16 => State::IperfDone,
            -1 => State::AccessDenied,
            -2 => State::ServerError,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub fn to_byte(self) -> u8 {
        (self as i8) as u8
    }
}

/// Errors in what a peer sent. Each is a reason to drop that peer, never to panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A length prefix larger than we accept.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Announced length.
        len: usize,
        /// Our limit.
        max: usize,
    },
    /// A zero-length message.
    #[error("empty message")]
    Empty,
    /// Fewer bytes than the length prefix announced.
    #[error("truncated message: {have} of {want} bytes")]
    Truncated {
        /// Bytes present.
        have: usize,
        /// Bytes announced.
        want: usize,
    },
    /// The body is not JSON.
    #[error("message is not valid JSON: {0}")]
    Json(String),
    /// The body is JSON but not an object.
    #[error("message is not a JSON object")]
    NotObject,
    /// A known field with a value of the wrong type or out of range.
    #[error("field `{0}` has an invalid value")]
    BadField(&'static str),
    /// A required field is absent.
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    /// A valid request for something this implementation does not do.
    #[error("unsupported option `{0}`")]
    Unsupported(&'static str),
    /// A cookie that is not 36 printable ASCII characters followed by NUL.
    #[error("malformed cookie")]
    BadCookie,
    /// A state byte iperf3 does not define.
    #[error("unknown state byte {0}")]
    UnknownState(i8),
    /// A defined state byte at a point where it makes no sense.
    #[error("unexpected state {0:?}")]
    UnexpectedState(State),
}

impl ProtocolError {
    /// The iperf3 `i_errno` a server reports for this error with [`State::ServerError`],
    /// so that a stock client prints a meaningful message.
    pub fn iperf_errno(&self) -> i32 {
        match self {
            ProtocolError::Unsupported(_) => ierr::UNIMPLEMENTED,
            ProtocolError::BadField("parallel") => ierr::NUM_STREAMS,
            _ => ierr::RECV_PARAMS,
        }
    }
}

/// The shared secret that ties data streams to a control connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cookie([u8; COOKIE_LEN]);

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cookie is all a stranger needs to join a test's data streams: don't log it.
        f.write_str("Cookie(..)")
    }
}

impl Cookie {
    /// A fresh random cookie in iperf3's alphabet (`a-z2-7`).
    pub fn generate() -> Cookie {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut raw = [0u8; COOKIE_LEN];
        rand::fill(&mut raw[..]);
        let mut out = [0u8; COOKIE_LEN];
        for (o, r) in out.iter_mut().zip(raw.iter()).take(COOKIE_LEN - 1) {
            // 256 is a multiple of 32, so the modulo keeps the distribution uniform.
            *o = ALPHABET[usize::from(*r) % ALPHABET.len()];
        }
        Cookie(out)
    }

    /// Validates a cookie received from a peer: 36 printable non-space ASCII characters
    /// and a NUL. iperf3 itself only compares bytes, but every iperf3 version generates
    /// printable cookies, and checking catches peers that are not speaking iperf3.
    pub fn parse(bytes: &[u8]) -> Result<Cookie, ProtocolError> {
        let arr: [u8; COOKIE_LEN] = bytes.try_into().map_err(|_| ProtocolError::BadCookie)?;
        let (body, nul) = arr.split_at(COOKIE_LEN - 1);
        if nul != [0] || !body.iter().all(|b| b.is_ascii_graphic()) {
            return Err(ProtocolError::BadCookie);
        }
        Ok(Cookie(arr))
    }

    /// The 37 bytes on the wire.
    pub fn as_bytes(&self) -> &[u8; COOKIE_LEN] {
        &self.0
    }
}

/// Splits one length-prefixed message off the front of `buf`.
///
/// Returns the JSON body and the remaining bytes. Used by the fuzz target and tests;
/// the socket code reads the prefix and body separately with the same checks
/// ([`check_frame_len`]).
pub fn split_frame(buf: &[u8], max_len: usize) -> Result<(&[u8], &[u8]), ProtocolError> {
    let Some((prefix, rest)) = buf.split_first_chunk::<4>() else {
        return Err(ProtocolError::Truncated {
            have: buf.len(),
            want: 4,
        });
    };
    let len = check_frame_len(*prefix, max_len)?;
    if rest.len() < len {
        return Err(ProtocolError::Truncated {
            have: rest.len(),
            want: len,
        });
    }
    Ok(rest.split_at(len))
}

/// Decodes and checks a 4-byte big-endian length prefix.
pub fn check_frame_len(prefix: [u8; 4], max_len: usize) -> Result<usize, ProtocolError> {
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len == 0 {
        return Err(ProtocolError::Empty);
    }
    if len > max_len {
        return Err(ProtocolError::TooLong { len, max: max_len });
    }
    Ok(len)
}

/// Prefixes a JSON body with its 4-byte big-endian length.
pub fn encode_frame(value: &Value) -> Vec<u8> {
    let body = value.to_string();
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body.as_bytes());
    out
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ProtocolError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ProtocolError::NotObject),
        Err(e) => Err(ProtocolError::Json(e.to_string())),
    }
}

/// Reads a non-negative integer the way iperf3 writes numbers: cJSON prints integral
/// doubles that do not fit an `int` in `%g` form (e.g. `1e+16`), so accept integral
/// floats too (below 2^64; the sender had a double, so the value is exactly that).
fn uint_field(map: &Map<String, Value>, key: &'static str) -> Result<Option<u64>, ProtocolError> {
    let Some(v) = map.get(key) else {
        return Ok(None);
    };
    if let Some(n) = v.as_u64() {
        return Ok(Some(n));
    }
    match v.as_f64() {
        Some(f)
            if f.is_finite()
                && f >= 0.0
                && f.fract() == 0.0
                && f < 18_446_744_073_709_551_616.0 =>
        {
            // Integral and in range, so the conversion is exact.
            Ok(Some(f as u64))
        }
        _ => Err(ProtocolError::BadField(key)),
    }
}

fn u32_field(map: &Map<String, Value>, key: &'static str) -> Result<Option<u32>, ProtocolError> {
    uint_field(map, key)?
        .map(|n| u32::try_from(n).map_err(|_| ProtocolError::BadField(key)))
        .transpose()
}

/// Any signed number. iperf3 means -1 by "not available", but some builds print it as
/// 18446744073709551615 (an `int64_t` -1 through an unsigned conversion): values of
/// 2^63 and above wrap around to negative, as the sender meant them.
fn int_field(map: &Map<String, Value>, key: &'static str) -> Result<Option<i64>, ProtocolError> {
    let Some(v) = map.get(key) else {
        return Ok(None);
    };
    if let Some(n) = v.as_i64() {
        return Ok(Some(n));
    }
    if let Some(n) = v.as_u64() {
        return Ok(Some(n as i64));
    }
    match v.as_f64() {
        // Saturating casts: 1.8446744073709552e19 becomes u64::MAX, i.e. -1.
        Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f.trunc() as u64 as i64)),
        Some(f) if f.is_finite() => Ok(Some(f.trunc() as i64)),
        _ => Err(ProtocolError::BadField(key)),
    }
}

fn float_field(map: &Map<String, Value>, key: &'static str) -> Result<Option<f64>, ProtocolError> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(f) if f.is_finite() => Ok(Some(f)),
            _ => Err(ProtocolError::BadField(key)),
        },
    }
}

fn string_field(
    map: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, ProtocolError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ProtocolError::BadField(key)),
    }
}

/// Transport protocol requested by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP (the only one we serve).
    #[default]
    Tcp,
    /// UDP (`-u`).
    Udp,
    /// SCTP (`--sctp`).
    Sctp,
}

/// Test parameters sent by the client after [`State::ParamExchange`].
///
/// Flags follow iperf3's `get_parameters`: a flag is set when its key is present,
/// whatever its value (iperf3 only ever sends `true`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestParams {
    /// Requested transport.
    pub transport: Transport,
    /// Seconds at the start the receiver should not count (`-O`).
    pub omit: u32,
    /// Test length in seconds (`-t`); 0 when the test ends on bytes or blocks.
    pub time: u32,
    /// Bytes to send before ending (`-n`); 0 if not bytes-bounded.
    pub num: u64,
    /// Blocks to send before ending (`-k`); 0 if not block-bounded.
    pub blockcount: u64,
    /// Parallel streams (`-P`).
    pub parallel: u32,
    /// Server sends, client receives (`-R`).
    pub reverse: bool,
    /// Both directions at once (`--bidir`).
    pub bidirectional: bool,
    /// Read/write block length (`-l`).
    pub len: Option<u32>,
    /// Socket buffer size (`-w`).
    pub window: Option<u32>,
    /// TCP MSS (`-M`).
    pub mss: Option<u32>,
    /// TCP_NODELAY on data streams (`-N`).
    pub nodelay: bool,
    /// Application-level rate limit in bit/s (`-b`).
    pub bandwidth: Option<u64>,
    /// Socket pacing rate (`--fq-rate`).
    pub fqrate: Option<u64>,
    /// Congestion control algorithm (`-C`).
    pub congestion: Option<String>,
    /// The client wants the server's output in the results (`--get-server-output`).
    pub get_server_output: bool,
    /// The client's self-reported version.
    pub client_version: Option<String>,
}

impl TestParams {
    /// Parameters for a plain TCP test as our client sends them.
    pub fn tcp(time_secs: u32, parallel: u32, reverse: bool) -> TestParams {
        TestParams {
            time: time_secs,
            parallel,
            reverse,
            len: u32::try_from(DEFAULT_BLOCK_LEN).ok(),
            client_version: Some(concat!("linkmeter-", env!("CARGO_PKG_VERSION")).to_owned()),
            ..TestParams::default()
        }
    }

    /// Parses a parameter message body. Unknown keys are ignored, because every iperf3
    /// release adds some (3.16 added `skip_rx_copy`, for instance) and refusing them
    /// would break interoperability with newer clients; [`TestParams::check_supported`]
    /// rejects the known options we cannot honour.
    pub fn from_json(body: &[u8]) -> Result<TestParams, ProtocolError> {
        let map = parse_object(body)?;
        let transport = if map.contains_key("sctp") {
            Transport::Sctp
        } else if map.contains_key("udp") {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        Ok(TestParams {
            transport,
            omit: u32_field(&map, "omit")?.unwrap_or(0),
            time: u32_field(&map, "time")?.unwrap_or(0),
            num: uint_field(&map, "num")?.unwrap_or(0),
            blockcount: uint_field(&map, "blockcount")?.unwrap_or(0),
            // iperf3 defaults to one stream when the key is absent.
            parallel: u32_field(&map, "parallel")?.unwrap_or(1),
            reverse: map.contains_key("reverse"),
            bidirectional: map.contains_key("bidirectional"),
            len: u32_field(&map, "len")?,
            window: u32_field(&map, "window")?,
            mss: u32_field(&map, "MSS")?,
            nodelay: map.contains_key("nodelay"),
            bandwidth: uint_field(&map, "bandwidth")?,
            fqrate: uint_field(&map, "fqrate")?,
            congestion: string_field(&map, "congestion")?,
            get_server_output: map.contains_key("get_server_output"),
            client_version: string_field(&map, "client_version")?,
        })
    }

    /// Rejects what this implementation cannot do, and values outside iperf3's own
    /// limits. `max_streams` is the server's own cap (at most [`MAX_STREAMS`]).
    pub fn check_supported(&self, max_streams: u32) -> Result<(), ProtocolError> {
        match self.transport {
            Transport::Tcp => {}
            Transport::Udp => return Err(ProtocolError::Unsupported("udp")),
            Transport::Sctp => return Err(ProtocolError::Unsupported("sctp")),
        }
        if self.bidirectional {
            return Err(ProtocolError::Unsupported("bidirectional"));
        }
        // In reverse mode we are the sender and would have to pace; we do not.
        if self.reverse && self.bandwidth.is_some_and(|b| b > 0) {
            return Err(ProtocolError::Unsupported("bandwidth"));
        }
        if self.reverse && self.fqrate.is_some_and(|b| b > 0) {
            return Err(ProtocolError::Unsupported("fqrate"));
        }
        if self.parallel == 0 || self.parallel > max_streams.min(MAX_STREAMS) {
            return Err(ProtocolError::BadField("parallel"));
        }
        if u64::from(self.time) > MAX_TIME_SECS {
            return Err(ProtocolError::BadField("time"));
        }
        if u64::from(self.omit) > MAX_TIME_SECS {
            return Err(ProtocolError::BadField("omit"));
        }
        if self.len == Some(0) {
            return Err(ProtocolError::BadField("len"));
        }
        Ok(())
    }

    /// The JSON body iperf3's `send_parameters` would produce for these parameters.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self.transport {
            Transport::Tcp => m.insert("tcp".into(), json!(true)),
            Transport::Udp => m.insert("udp".into(), json!(true)),
            Transport::Sctp => m.insert("sctp".into(), json!(true)),
        };
        m.insert("omit".into(), json!(self.omit));
        m.insert("time".into(), json!(self.time));
        m.insert("num".into(), json!(self.num));
        m.insert("blockcount".into(), json!(self.blockcount));
        if let Some(mss) = self.mss {
            m.insert("MSS".into(), json!(mss));
        }
        if self.nodelay {
            m.insert("nodelay".into(), json!(true));
        }
        m.insert("parallel".into(), json!(self.parallel));
        if self.reverse {
            m.insert("reverse".into(), json!(true));
        }
        if self.bidirectional {
            m.insert("bidirectional".into(), json!(true));
        }
        if let Some(w) = self.window {
            m.insert("window".into(), json!(w));
        }
        if let Some(l) = self.len {
            m.insert("len".into(), json!(l));
        }
        if let Some(b) = self.bandwidth {
            m.insert("bandwidth".into(), json!(b));
        }
        if let Some(b) = self.fqrate {
            m.insert("fqrate".into(), json!(b));
        }
        if let Some(c) = &self.congestion {
            m.insert("congestion".into(), json!(c));
        }
        if self.get_server_output {
            m.insert("get_server_output".into(), json!(1));
        }
        if let Some(v) = &self.client_version {
            m.insert("client_version".into(), json!(v));
        }
        Value::Object(m)
    }
}

/// iperf3's stream ids: 1 for the first stream, then 3, 4, 5… (a historical quirk
/// kept for compatibility, see `iperf_add_stream`). Both ends number streams in the
/// order the data connections were opened.
pub fn stream_id(index: usize) -> i64 {
    let i = i64::try_from(index).unwrap_or(i64::MAX - 2);
    if i == 0 { 1 } else { i + 2 }
}

/// One stream's entry in a results message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamResult {
    /// Stream id, see [`stream_id`].
    pub id: i64,
    /// Bytes sent (sender) or received (receiver) by the reporting side.
    pub bytes: u64,
    /// Retransmits seen by the sender; -1 when the reporter is the receiver.
    pub retransmits: i64,
    /// Seconds from the start of the test to the start of counting.
    pub start_time: f64,
    /// Seconds from the start of the test to the end of counting.
    pub end_time: f64,
}

/// The results key carrying a linkmeter client's estimate.
const ESTIMATE_KEY: &str = "linkmeter_estimate_bps";

/// A results message (`send_results` / `get_results`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestResults {
    /// CPU use of the reporting process during the test, percent.
    pub cpu_util_total: f64,
    /// User part of it.
    pub cpu_util_user: f64,
    /// System part of it.
    pub cpu_util_system: f64,
    /// 1 when the reporter sent data and knows retransmits, 0 when it sent but does
    /// not, -1 when it received.
    pub sender_has_retransmits: i64,
    /// Congestion control the reporter used, if it says.
    pub congestion_used: Option<String>,
    /// Per-stream figures.
    pub streams: Vec<StreamResult>,
    /// Text for a client that asked for the server's output.
    pub server_output_text: Option<String>,
    /// A linkmeter client's adaptive estimate of the rate, bit/s
    /// (`linkmeter_estimate_bps`; iperf3 ignores keys it does not know). It lets the
    /// serving node record the same figure the client did.
    pub estimate_bps: Option<f64>,
}

impl TestResults {
    /// Parses a results message body, requiring the fields iperf3's `get_results`
    /// requires. `start_time`/`end_time` are optional, as they are for iperf3 (servers
    /// before 3.2 lack them).
    pub fn from_json(body: &[u8]) -> Result<TestResults, ProtocolError> {
        let map = parse_object(body)?;
        let req = |key: &'static str| -> Result<f64, ProtocolError> {
            float_field(&map, key)?.ok_or(ProtocolError::MissingField(key))
        };
        let cpu_util_total = req("cpu_util_total")?;
        let cpu_util_user = req("cpu_util_user")?;
        let cpu_util_system = req("cpu_util_system")?;
        let sender_has_retransmits = int_field(&map, "sender_has_retransmits")?
            .ok_or(ProtocolError::MissingField("sender_has_retransmits"))?;
        let Some(streams) = map.get("streams") else {
            return Err(ProtocolError::MissingField("streams"));
        };
        let Value::Array(streams) = streams else {
            return Err(ProtocolError::BadField("streams"));
        };
        let mut out = Vec::with_capacity(streams.len().min(MAX_STREAMS as usize));
        for s in streams {
            let Value::Object(s) = s else {
                return Err(ProtocolError::BadField("streams"));
            };
            let need = |key: &'static str| -> Result<i64, ProtocolError> {
                int_field(s, key)?.ok_or(ProtocolError::MissingField(key))
            };
            let id = need("id")?;
            let bytes = uint_field(s, "bytes")?.ok_or(ProtocolError::MissingField("bytes"))?;
            let retransmits = need("retransmits")?;
            // Checked for presence like iperf3 does, values unused for TCP.
            float_field(s, "jitter")?.ok_or(ProtocolError::MissingField("jitter"))?;
            need("errors")?;
            need("packets")?;
            out.push(StreamResult {
                id,
                bytes,
                retransmits,
                start_time: float_field(s, "start_time")?.unwrap_or(0.0),
                end_time: float_field(s, "end_time")?.unwrap_or(0.0),
            });
        }
        Ok(TestResults {
            cpu_util_total,
            cpu_util_user,
            cpu_util_system,
            sender_has_retransmits,
            congestion_used: string_field(&map, "congestion_used")?,
            streams: out,
            server_output_text: string_field(&map, "server_output_text")?,
            estimate_bps: float_field(&map, ESTIMATE_KEY)?,
        })
    }

    /// The JSON body for this results message.
    pub fn to_json(&self) -> Value {
        let streams: Vec<Value> = self
            .streams
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "bytes": s.bytes,
                    "retransmits": s.retransmits,
                    "jitter": 0,
                    "errors": 0,
                    "packets": 0,
                    "start_time": s.start_time,
                    "end_time": s.end_time,
                })
            })
            .collect();
        let mut m = Map::new();
        m.insert("cpu_util_total".into(), json!(self.cpu_util_total));
        m.insert("cpu_util_user".into(), json!(self.cpu_util_user));
        m.insert("cpu_util_system".into(), json!(self.cpu_util_system));
        m.insert(
            "sender_has_retransmits".into(),
            json!(self.sender_has_retransmits),
        );
        if let Some(c) = &self.congestion_used {
            m.insert("congestion_used".into(), json!(c));
        }
        m.insert("streams".into(), Value::Array(streams));
        if let Some(t) = &self.server_output_text {
            m.insert("server_output_text".into(), json!(t));
        }
        if let Some(e) = self.estimate_bps.filter(|e| e.is_finite()) {
            m.insert(ESTIMATE_KEY.into(), json!(e));
        }
        Value::Object(m)
    }

    /// Total bytes over all streams.
    pub fn total_bytes(&self) -> u64 {
        self.streams
            .iter()
            .map(|s| s.bytes)
            .fold(0, u64::saturating_add)
    }

    /// Total retransmits over all streams, if the reporter counted any.
    pub fn total_retransmits(&self) -> Option<u64> {
        if self.sender_has_retransmits != 1 {
            return None;
        }
        Some(
            self.streams
                .iter()
                .map(|s| u64::try_from(s.retransmits).unwrap_or(0))
                .fold(0, u64::saturating_add),
        )
    }
}

/// Everything the fuzz target exercises: frame splitting, both message parsers, the
/// parameter checks, the cookie and state decoders. Never panics, whatever the input.
pub fn parse_control_message(data: &[u8]) -> Result<(), ProtocolError> {
    if let Some(first) = data.first() {
        let _ = State::from_byte(*first);
    }
    if data.len() >= COOKIE_LEN {
        let _ = Cookie::parse(&data[..COOKIE_LEN]);
    }
    let (body, _rest) = split_frame(data, DEFAULT_MAX_PARAMS_LEN.max(MAX_RESULTS_LEN))?;
    if let Ok(p) = TestParams::from_json(body) {
        let _ = p.check_supported(MAX_STREAMS);
        // What we parse must survive a round trip through our own encoder.
        let again = TestParams::from_json(p.to_json().to_string().as_bytes());
        debug_assert_eq!(again.as_ref().ok(), Some(&p));
    }
    let r = TestResults::from_json(body)?;
    let _ = (r.total_bytes(), r.total_retransmits());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn state_bytes_match_iperf3() {
        // Values from iperf_api.h (3.12).
        let expect: [(State, i8); 13] = [
            (State::TestStart, 1),
            (State::TestRunning, 2),
            (State::TestEnd, 4),
            (State::ParamExchange, 9),
            (State::CreateStreams, 10),
            (State::ServerTerminate, 11),
            (State::ClientTerminate, 12),
            (State::ExchangeResults, 13),
            (State::DisplayResults, 14),
            (State::IperfStart, 15),
            (State::IperfDone, 16),
            (State::AccessDenied, -1),
            (State::ServerError, -2),
        ];
        for (s, v) in expect {
            assert_eq!(s.to_byte(), v as u8);
            assert_eq!(State::from_byte(v as u8), Some(s));
        }
        assert_eq!(State::from_byte(3), None);
        assert_eq!(State::from_byte(5), None);
        assert_eq!(State::from_byte(0), None);
    }

    #[test]
    fn cookie_generation_and_validation() {
        let c = Cookie::generate();
        let b = c.as_bytes();
        assert_eq!(b.len(), 37);
        assert_eq!(b[36], 0);
        assert!(
            b[..36]
                .iter()
                .all(|x| b"abcdefghijklmnopqrstuvwxyz234567".contains(x))
        );
        assert_eq!(Cookie::parse(b), Ok(c));
        assert_ne!(Cookie::generate(), c);
        // Wrong lengths, missing NUL, control characters.
        assert!(Cookie::parse(&b[..36]).is_err());
        let mut long = b.to_vec();
        long.push(0);
        assert!(Cookie::parse(&long).is_err());
        let mut no_nul = *b;
        no_nul[36] = b'a';
        assert!(Cookie::parse(&no_nul).is_err());
        let mut ctrl = *b;
        ctrl[3] = b'\n';
        assert!(Cookie::parse(&ctrl).is_err());
        let mut early_nul = *b;
        early_nul[10] = 0;
        assert!(Cookie::parse(&early_nul).is_err());
    }

    #[test]
    fn parses_iperf3_client_parameters() {
        // What iperf3 3.12 `-c host -R -P 4 -t 2` sends.
        let body = br#"{"tcp":true,"omit":0,"time":2,"num":0,"blockcount":0,"parallel":4,"reverse":true,"len":131072,"pacing_timer":1000,"client_version":"3.12"}"#;
        let p = TestParams::from_json(body).expect("parses");
        assert_eq!(p.transport, Transport::Tcp);
        assert_eq!((p.time, p.parallel, p.reverse), (2, 4, true));
        assert_eq!(p.len, Some(131_072));
        assert_eq!(p.client_version.as_deref(), Some("3.12"));
        assert!(p.check_supported(MAX_STREAMS).is_ok());
        // Our own encoder round-trips.
        let again = TestParams::from_json(p.to_json().to_string().as_bytes());
        assert_eq!(again, Ok(p));
    }

    #[test]
    fn large_numbers_in_cjson_float_form() {
        let p = TestParams::from_json(br#"{"tcp":true,"num":1e+16,"time":0}"#).expect("parses");
        assert_eq!(p.num, 10_000_000_000_000_000);
        assert_eq!(
            TestParams::from_json(br#"{"num":1.5}"#),
            Err(ProtocolError::BadField("num"))
        );
        assert_eq!(
            TestParams::from_json(br#"{"time":-3}"#),
            Err(ProtocolError::BadField("time"))
        );
        assert_eq!(
            TestParams::from_json(br#"{"time":"10"}"#),
            Err(ProtocolError::BadField("time"))
        );
        assert_eq!(
            TestParams::from_json(br#"{"parallel":4294967296}"#),
            Err(ProtocolError::BadField("parallel"))
        );
    }

    #[test]
    fn rejects_unsupported_options() {
        let check = |body: &[u8]| {
            TestParams::from_json(body)
                .and_then(|p| p.check_supported(MAX_STREAMS))
                .err()
        };
        assert_eq!(
            check(br#"{"udp":true,"parallel":1}"#),
            Some(ProtocolError::Unsupported("udp"))
        );
        // Presence is what counts, as in iperf3.
        assert_eq!(
            check(br#"{"tcp":true,"udp":false}"#),
            Some(ProtocolError::Unsupported("udp"))
        );
        assert_eq!(
            check(br#"{"sctp":true}"#),
            Some(ProtocolError::Unsupported("sctp"))
        );
        assert_eq!(
            check(br#"{"tcp":true,"bidirectional":true}"#),
            Some(ProtocolError::Unsupported("bidirectional"))
        );
        assert_eq!(
            check(br#"{"tcp":true,"reverse":true,"bandwidth":1000000}"#),
            Some(ProtocolError::Unsupported("bandwidth"))
        );
        assert_eq!(check(br#"{"tcp":true,"bandwidth":1000000}"#), None);
        assert_eq!(
            check(br#"{"tcp":true,"parallel":0}"#),
            Some(ProtocolError::BadField("parallel"))
        );
        assert_eq!(
            check(br#"{"tcp":true,"parallel":129}"#),
            Some(ProtocolError::BadField("parallel"))
        );
        assert_eq!(
            check(br#"{"tcp":true,"time":86401}"#),
            Some(ProtocolError::BadField("time"))
        );
        // Unknown keys from newer clients are fine.
        assert_eq!(check(br#"{"tcp":true,"skip_rx_copy":1}"#), None);
        assert_eq!(
            ProtocolError::Unsupported("udp").iperf_errno(),
            ierr::UNIMPLEMENTED
        );
    }

    #[test]
    fn rejects_non_objects() {
        assert_eq!(
            TestParams::from_json(b"[1,2]"),
            Err(ProtocolError::NotObject)
        );
        assert!(matches!(
            TestParams::from_json(b"{\"tcp\":tru"),
            Err(ProtocolError::Json(_))
        ));
        assert!(matches!(
            TestParams::from_json(b"\xff\xfe"),
            Err(ProtocolError::Json(_))
        ));
    }

    #[test]
    fn frames() {
        let v = json!({"a": 1});
        let f = encode_frame(&v);
        assert_eq!(&f[..4], &[0, 0, 0, 7]);
        let (body, rest) = split_frame(&f, 100).expect("frame");
        assert_eq!(body, br#"{"a":1}"#);
        assert!(rest.is_empty());
        assert_eq!(
            split_frame(&f, 6),
            Err(ProtocolError::TooLong { len: 7, max: 6 })
        );
        assert_eq!(
            split_frame(&f[..6], 100),
            Err(ProtocolError::Truncated { have: 2, want: 7 })
        );
        assert_eq!(
            split_frame(&[0, 0], 100).map(|_| ()),
            Err(ProtocolError::Truncated { have: 2, want: 4 })
        );
        assert_eq!(split_frame(&[0, 0, 0, 0], 100), Err(ProtocolError::Empty));
        assert_eq!(
            check_frame_len([0xff, 0xff, 0xff, 0xff], 8192),
            Err(ProtocolError::TooLong {
                len: 0xffff_ffff,
                max: 8192
            })
        );
    }

    #[test]
    fn results_round_trip_and_iperf3_form() {
        // What iperf3 3.12 sends as a receiving server (cJSON prints whole doubles as ints).
        let body = br#"{"cpu_util_total":1.5,"cpu_util_user":0.2,"cpu_util_system":1.3,"sender_has_retransmits":-1,"congestion_used":"cubic","streams":[{"id":1,"bytes":4808966144,"retransmits":-1,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":2.000107}]}"#;
        let r = TestResults::from_json(body).expect("parses");
        assert_eq!(r.streams.len(), 1);
        assert_eq!(r.streams[0].bytes, 4_808_966_144);
        assert_eq!(r.total_retransmits(), None);
        assert_eq!(r.congestion_used.as_deref(), Some("cubic"));
        // Debian's 3.12 prints -1 as an unsigned 64-bit number.
        let debian = br#"{"cpu_util_total":49.6,"cpu_util_user":1.09,"cpu_util_system":48.5,"sender_has_retransmits":18446744073709551615,"congestion_used":"bbr","streams":[{"id":1,"bytes":10126230521,"retransmits":18446744073709551615,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":10.000364}]}"#;
        let d = TestResults::from_json(debian).expect("parses");
        assert_eq!(d.sender_has_retransmits, -1);
        assert_eq!(d.streams[0].retransmits, -1);
        assert_eq!(d.total_bytes(), 10_126_230_521);
        let again = TestResults::from_json(r.to_json().to_string().as_bytes()).expect("again");
        assert_eq!(again, r);
        // Missing required fields.
        assert_eq!(
            TestResults::from_json(
                br#"{"cpu_util_total":1,"cpu_util_user":1,"cpu_util_system":1,"streams":[]}"#
            ),
            Err(ProtocolError::MissingField("sender_has_retransmits"))
        );
        assert_eq!(
            TestResults::from_json(br#"{"cpu_util_total":1,"cpu_util_user":1,"cpu_util_system":1,"sender_has_retransmits":1,"streams":[{"id":1}]}"#),
            Err(ProtocolError::MissingField("bytes"))
        );
    }

    #[test]
    fn a_linkmeter_estimate_travels_in_the_results() {
        let mut r = TestResults {
            sender_has_retransmits: 1,
            estimate_bps: Some(38_220_000.5),
            ..TestResults::default()
        };
        let text = r.to_json().to_string();
        assert!(
            text.contains("\"linkmeter_estimate_bps\":38220000.5"),
            "{text}"
        );
        assert_eq!(TestResults::from_json(text.as_bytes()), Ok(r.clone()));
        // Absent for iperf3 peers; a non-number is a bad field, not a panic.
        r.estimate_bps = None;
        assert!(!r.to_json().to_string().contains("linkmeter_estimate_bps"));
        assert_eq!(
            TestResults::from_json(br#"{"cpu_util_total":1,"cpu_util_user":1,"cpu_util_system":1,"sender_has_retransmits":1,"streams":[],"linkmeter_estimate_bps":"fast"}"#),
            Err(ProtocolError::BadField("linkmeter_estimate_bps"))
        );
    }

    #[test]
    fn stream_ids_follow_iperf3() {
        let ids: Vec<i64> = (0..4).map(stream_id).collect();
        assert_eq!(ids, [1, 3, 4, 5]);
    }

    proptest! {
        #[test]
        fn parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_control_message(&data);
        }

        #[test]
        fn parser_never_panics_on_framed_json_like(body in "[{}\\[\\]\":,0-9a-z_eE+.\\- ]{0,256}") {
            let v = body.as_bytes();
            let mut framed = (v.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(v);
            let _ = parse_control_message(&framed);
        }

        #[test]
        fn params_round_trip(time in 0u32..86_400, parallel in 1u32..=128, reverse: bool,
                             num in 0u64..(1 << 53), len in proptest::option::of(1u32..1_000_000)) {
            let p = TestParams { time, parallel, reverse, num, len, ..TestParams::tcp(0, 1, false) };
            let framed = encode_frame(&p.to_json());
            let (body, rest) = split_frame(&framed, 8192).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(rest.is_empty());
            prop_assert_eq!(TestParams::from_json(body), Ok(p));
        }
    }
}
