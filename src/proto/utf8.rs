//! Incremental UTF-8 validation that fails at the first invalid byte.
//!
//! Text arrives in pieces: partial frames, then fragments. [`Utf8Validator`] checks each
//! piece once, as it arrives, and carries an incomplete code point (at most 3 bytes) over to
//! the next piece, so a message is never re-scanned and an invalid byte is reported as soon
//! as it is seen. The scanning itself is `simdutf8`'s.

use super::error::ProtocolError;

/// Validates a text message piece by piece.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// Bytes of a code point that the last piece started but did not finish.
    carry: [u8; 4],
    carry_len: usize,
    /// Bytes of the message validated so far (including `carry`).
    seen: u64,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next piece of the message.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidUtf8`] as soon as `piece` holds a byte that cannot continue
    /// the text so far; a piece may end inside a code point.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), ProtocolError> {
        while self.carry_len > 0 {
            let Some((&byte, rest)) = piece.split_first() else {
                return Ok(());
            };
            piece = rest;
            self.carry[self.carry_len] = byte;
            self.carry_len += 1;
            self.seen += 1;
            match std::str::from_utf8(&self.carry[..self.carry_len]) {
                Ok(_) => self.carry_len = 0,
                Err(e) if e.error_len().is_none() => {}
                Err(_) => return Err(self.error_at(self.seen - 1)),
            }
        }
        match simdutf8::compat::from_utf8(piece) {
            Ok(_) => self.seen += piece.len() as u64,
            Err(e) => {
                let valid = e.valid_up_to();
                if let Some(len) = e.error_len() {
                    // A lead byte is fine itself: the bad byte is the one after the `len`
                    // bytes of its sequence that were accepted (as in the carry path above).
                    let bad = if matches!(piece[valid], 0xC2..=0xF4) {
                        valid + len
                    } else {
                        valid
                    };
                    return Err(self.error_at(self.seen + bad as u64));
                }
                let tail = &piece[valid..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len();
                self.seen += piece.len() as u64;
            }
        }
        Ok(())
    }

    /// Ends the message and resets the validator for the next one.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidUtf8`] when the message stops inside a code point.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let incomplete = self.carry_len > 0;
        let seen = self.seen;
        *self = Self::default();
        if incomplete {
            Err(ProtocolError::InvalidUtf8 { offset: seen })
        } else {
            Ok(())
        }
    }

    fn error_at(&mut self, offset: u64) -> ProtocolError {
        *self = Self::default();
        ProtocolError::InvalidUtf8 { offset }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_in_pieces(bytes: &[u8], size: usize) -> Result<(), ProtocolError> {
        let mut v = Utf8Validator::new();
        for piece in bytes.chunks(size.max(1)) {
            v.feed(piece)?;
        }
        v.finish()
    }

    #[test]
    fn valid_text_passes_whatever_the_split() {
        let text = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞 \u{10FFFF}".as_bytes();
        for size in 1..=text.len() {
            assert_eq!(validate_in_pieces(text, size), Ok(()), "size {size}");
        }
    }

    #[test]
    fn invalid_byte_fails_in_the_piece_that_holds_it() {
        // "κόσμε" then 0xED 0xA0 0x80 (a surrogate), then more text.
        let mut bytes = "κόσμε".as_bytes().to_vec();
        let bad_at = bytes.len();
        bytes.extend_from_slice(&[0xED, 0xA0, 0x80]);
        bytes.extend_from_slice(b"edited");
        for size in 1..=bytes.len() {
            let mut v = Utf8Validator::new();
            let mut failed_in = None;
            for (i, piece) in bytes.chunks(size).enumerate() {
                if v.feed(piece).is_err() {
                    failed_in = Some(i);
                    break;
                }
            }
            // The surrogate is known bad at its second byte (0xA0 after 0xED).
            let expected_piece = (bad_at + 1) / size;
            assert_eq!(failed_in, Some(expected_piece), "size {size}");
        }
    }

    #[test]
    fn a_message_ending_inside_a_code_point_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[b'a', 0xF0, 0x9D]), Ok(()));
        assert_eq!(v.finish(), Err(ProtocolError::InvalidUtf8 { offset: 3 }));
        // and the validator is reset for the next message
        assert_eq!(v.feed(b"ok"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn code_points_beyond_u10ffff_fail_at_their_second_byte() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xF4]), Ok(()));
        assert_eq!(
            v.feed(&[0x90]),
            Err(ProtocolError::InvalidUtf8 { offset: 1 })
        );
    }

    #[test]
    fn error_offset_points_at_the_bad_byte() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"abc"), Ok(()));
        assert_eq!(
            v.feed(&[b'd', 0xFF]),
            Err(ProtocolError::InvalidUtf8 { offset: 4 })
        );
    }
}
