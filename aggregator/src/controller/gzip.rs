//! gzip for `/metrics`, by flate2 (the agent's encoder too).

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

/// `data` as one gzip member. Writing into a `Vec` cannot fail; should the encoder
/// ever report an error, the caller gets an empty body rather than a panic.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::fast());
    if enc.write_all(data).is_err() {
        return Vec::new();
    }
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    #[test]
    fn round_trips_and_shrinks_metrics_text() {
        let text: String = (0..500)
            .map(|i| format!("linkmeter_aggregator_writes_total{{kind=\"ClusterTopology\",result=\"ok\"}} {i}\n"))
            .collect();
        let packed = super::gzip(text.as_bytes());
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
}
