//! permessage-deflate (RFC 7692): negotiation, and compressing and inflating messages.
//!
//! A compressed message is the raw DEFLATE stream of its payload, flushed with a sync flush
//! and without the final `00 00 FF FF`, sent with RSV1 on its first frame. Each side keeps
//! its compression context across messages ("context takeover") unless the negotiation
//! said otherwise. Inflating is bounded: output beyond `max_message_size` fails with 1009
//! while inflating, so a small compressed message cannot expand without limit.

use std::fmt;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::error::ProtocolError;

/// The name of the extension.
pub const EXTENSION: &str = "permessage-deflate";

/// The tail a sync flush ends with; stripped when sending, restored when inflating.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// What the client offers (RFC 7692 §7.1). The default offers to accept any window size
/// for its own compression (`client_max_window_bits`) and uses context takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Offer `client_no_context_takeover`: this client compresses every message on its
    /// own (less memory held between messages, worse ratio). Default: `false`.
    pub client_no_context_takeover: bool,
    /// Ask the server for `server_no_context_takeover`. Default: `false`.
    pub server_no_context_takeover: bool,
    /// Offer `client_max_window_bits`, letting the server limit this client's window.
    /// Default: `true`.
    pub client_max_window_bits: bool,
    /// Compression level, 0 (none) to 9 (best). Default: 1, the fastest, which keeps most
    /// of the gain on typical messages.
    pub level: u32,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: true,
            level: 1,
        }
    }
}

/// What the server accepted: the parameters in force on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// This client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// Window size (bits) this client compresses with.
    pub client_max_window_bits: u8,
    /// Window size (bits) the server compresses with.
    pub server_max_window_bits: u8,
}

/// The server's `Sec-WebSocket-Extensions` answer cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiationError(pub String);

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "permessage-deflate negotiation failed: {}", self.0)
    }
}

impl std::error::Error for NegotiationError {}

impl DeflateConfig {
    /// Sets [`DeflateConfig::client_no_context_takeover`].
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// Sets [`DeflateConfig::server_no_context_takeover`].
    pub fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// Sets [`DeflateConfig::client_max_window_bits`].
    pub fn client_max_window_bits(mut self, on: bool) -> Self {
        self.client_max_window_bits = on;
        self
    }

    /// Sets [`DeflateConfig::level`] (0–9; `Config::validate` refuses more).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level;
        self
    }

    /// The `Sec-WebSocket-Extensions` value to offer.
    pub fn offer(&self) -> String {
        let mut offer = EXTENSION.to_string();
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if self.client_max_window_bits {
            offer.push_str("; client_max_window_bits");
        }
        offer
    }

    /// Checks the server's `Sec-WebSocket-Extensions` answer against this offer.
    ///
    /// # Errors
    /// [`NegotiationError`] when the answer names another extension, repeats or misspells
    /// a parameter, gives a window size outside 8–15 (or 8 for this client, which zlib
    /// cannot compress with), limits this client's window without having been offered
    /// to, or drops a `server_no_context_takeover` this client asked for.
    pub fn accept(&self, response: &str) -> Result<DeflateParams, NegotiationError> {
        let fail = |why: String| Err(NegotiationError(why));
        let mut extensions = response.split(',').map(str::trim).filter(|e| !e.is_empty());
        let (Some(accepted), None) = (extensions.next(), extensions.next()) else {
            return fail(format!("expected one extension, got {response:?}"));
        };
        let mut parts = accepted.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        if !name.eq_ignore_ascii_case(EXTENSION) {
            return fail(format!("extension {name:?} was not offered"));
        }
        let mut params = DeflateParams {
            client_no_context_takeover: self.client_no_context_takeover,
            server_no_context_takeover: false,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
        };
        let mut seen = Vec::new();
        for part in parts {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                None => (part, None),
            };
            if seen.contains(&key) {
                return fail(format!("parameter {key} repeated"));
            }
            seen.push(key);
            match (key, value) {
                ("server_no_context_takeover", None) => params.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => params.client_no_context_takeover = true,
                ("server_max_window_bits", Some(bits)) => {
                    params.server_max_window_bits = window_bits(bits, 8)?;
                }
                ("client_max_window_bits", Some(bits)) if self.client_max_window_bits => {
                    params.client_max_window_bits = window_bits(bits, 9)?;
                }
                _ => return fail(format!("unexpected parameter {part:?}")),
            }
        }
        if self.server_no_context_takeover && !params.server_no_context_takeover {
            return fail("server_no_context_takeover was requested and not accepted".into());
        }
        Ok(params)
    }
}

fn window_bits(value: &str, min: u8) -> Result<u8, NegotiationError> {
    match value.parse::<u8>() {
        Ok(bits) if (min..=15).contains(&bits) => Ok(bits),
        _ => Err(NegotiationError(format!(
            "window size {value:?} outside {min}..=15"
        ))),
    }
}

/// Inflates the compressed messages the server sends.
#[derive(Debug)]
pub struct Inflater {
    inner: Decompress,
    reset_each_message: bool,
}

impl Inflater {
    /// An inflater for a connection with these parameters.
    pub fn new(params: &DeflateParams) -> Self {
        Self {
            // A 15-bit window inflates any smaller window the server compresses with.
            inner: Decompress::new_with_window_bits(false, 15),
            reset_each_message: params.server_no_context_takeover,
        }
    }

    /// Inflates the next compressed piece of a message onto `out`.
    ///
    /// # Errors
    /// [`ProtocolError::Decompression`] for a corrupt stream (1007),
    /// [`ProtocolError::MessageTooLarge`] once `out` would exceed `limit` (1009).
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        let mut input = input;
        loop {
            let room = (input.len() * 4).clamp(1024, 256 * 1024);
            out.reserve(room);
            let (before_in, before_out) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|e| ProtocolError::Decompression(e.to_string()))?;
            let consumed = (self.inner.total_in() - before_in) as usize;
            let produced = (self.inner.total_out() - before_out) as usize;
            input = &input[consumed..];
            if out.len() > limit {
                return Err(ProtocolError::MessageTooLarge {
                    size: out.len() as u64,
                    max: limit,
                });
            }
            let output_full = out.len() == out.capacity();
            if status == Status::StreamEnd {
                return Err(ProtocolError::Decompression(
                    "final block inside a message".into(),
                ));
            }
            if (input.is_empty() && !output_full) || (consumed == 0 && produced == 0) {
                return Ok(());
            }
        }
    }

    /// Ends a message: inflates the stripped sync-flush tail and resets if negotiated.
    ///
    /// # Errors
    /// As [`Inflater::inflate`].
    pub fn finish_message(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), ProtocolError> {
        self.inflate(&SYNC_TAIL, out, limit)?;
        if self.reset_each_message {
            self.inner.reset(false);
        }
        Ok(())
    }
}

/// Compresses the messages this client sends.
#[derive(Debug)]
pub struct Deflater {
    inner: Compress,
    reset_each_message: bool,
}

impl Deflater {
    /// A compressor for a connection with these parameters, at `level` (0–9).
    pub fn new(params: &DeflateParams, level: u32) -> Self {
        Self {
            inner: Compress::new_with_window_bits(
                Compression::new(level.min(9)),
                false,
                params.client_max_window_bits,
            ),
            reset_each_message: params.client_no_context_takeover,
        }
    }

    /// Compresses one whole message: the payload to send with RSV1 set.
    pub fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() / 2 + 16);
        let mut input = payload;
        loop {
            out.reserve((input.len() / 2).max(64));
            let before = self.inner.total_in();
            // Compressing into a Vec with room cannot fail: the stream is never finished.
            let _ = self
                .inner
                .compress_vec(input, &mut out, FlushCompress::Sync);
            input = &input[(self.inner.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
        }
        if out.is_empty() {
            // Nothing new to flush: send an empty stored block without its tail
            // (RFC 7692 §7.2.3.6), which the inflater reads as an empty message.
            out.push(0x00);
        }
        if self.reset_each_message {
            self.inner.reset();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DeflateParams {
        DeflateConfig::default()
            .accept("permessage-deflate")
            .unwrap()
    }

    fn round_trip(deflater: &mut Deflater, inflater: &mut Inflater, message: &[u8]) {
        let compressed = deflater.compress(message);
        let mut out = Vec::new();
        // feed it in two pieces, as two frames would
        let (a, b) = compressed.split_at(compressed.len() / 2);
        inflater.inflate(a, &mut out, 1 << 20).unwrap();
        inflater.inflate(b, &mut out, 1 << 20).unwrap();
        inflater.finish_message(&mut out, 1 << 20).unwrap();
        assert_eq!(out, message);
    }

    #[test]
    fn messages_round_trip_with_context_takeover() {
        let p = params();
        let (mut d, mut i) = (Deflater::new(&p, 6), Inflater::new(&p));
        for message in [
            &b"hello hello hello"[..],
            b"",
            b"hello again",
            &[7u8; 100_000],
        ] {
            round_trip(&mut d, &mut i, message);
        }
    }

    #[test]
    fn no_context_takeover_resets_both_sides() {
        let config = DeflateConfig {
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let p = config
            .accept("permessage-deflate; server_no_context_takeover; client_max_window_bits=9")
            .unwrap();
        assert!(p.client_no_context_takeover && p.server_no_context_takeover);
        assert_eq!(p.client_max_window_bits, 9);
        let (mut d, mut i) = (Deflater::new(&p, 6), Inflater::new(&p));
        let first = d.compress(b"abcabcabc");
        let second = d.compress(b"abcabcabc");
        assert_eq!(first, second, "no context carried over");
        round_trip(&mut d, &mut i, b"abcabcabc");
    }

    #[test]
    fn the_offer_lists_what_is_configured() {
        assert_eq!(
            DeflateConfig::default().offer(),
            "permessage-deflate; client_max_window_bits"
        );
    }

    #[test]
    fn bad_answers_are_refused() {
        let c = DeflateConfig::default();
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=8",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; foo",
        ] {
            assert!(c.accept(bad).is_err(), "{bad}");
        }
        let no_window = DeflateConfig {
            client_max_window_bits: false,
            ..DeflateConfig::default()
        };
        assert!(no_window
            .accept("permessage-deflate; client_max_window_bits=10")
            .is_err());
    }

    #[test]
    fn inflating_past_the_limit_is_1009() {
        let p = params();
        let compressed = Deflater::new(&p, 9).compress(&[0u8; 1 << 20]);
        assert!(compressed.len() < 10_000);
        let mut out = Vec::new();
        let err = Inflater::new(&p)
            .inflate(&compressed, &mut out, 64 * 1024)
            .unwrap_err();
        assert_eq!(err.close_code().as_u16(), 1009);
        assert!(out.capacity() < 1 << 20);
    }

    #[test]
    fn corrupt_streams_are_1007() {
        let p = params();
        let mut out = Vec::new();
        let err = Inflater::new(&p)
            .inflate(&[0xFF, 0xFF, 0xFF, 0xFF], &mut out, 1024)
            .unwrap_err();
        assert_eq!(err.close_code().as_u16(), 1007);
    }
}
