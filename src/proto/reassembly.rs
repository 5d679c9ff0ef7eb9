//! Reassembly of fragmented messages (RFC 6455 §5.4) and the per-message rules.
//!
//! [`Reassembler`] sees every frame twice: once when its header arrives
//! ([`Reassembler::check_header`], so size and ordering rules fail before the payload is
//! buffered), and once complete ([`Reassembler::push`]). Text is validated as it arrives,
//! also from a frame whose payload is still incomplete ([`Reassembler::validate_partial`]).
//!
//! With permessage-deflate negotiated (an [`Inflater`] given), a message whose first frame
//! has RSV1 set is compressed: each frame is inflated as it completes, the inflated text
//! validated as it comes out, and the inflated size held to `max_message_size`.

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use super::close::CloseFrame;
use super::decoder::Frame;
use super::deflate::Inflater;
use super::error::ProtocolError;
use super::frame::{FrameHeader, RSV1};
use super::opcode::OpCode;
use super::utf8::Utf8Validator;

/// A complete message or control frame received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, validated as UTF-8.
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// A Ping with its payload (at most 125 bytes).
    Ping(Bytes),
    /// A Pong with its payload (at most 125 bytes).
    Pong(Bytes),
    /// A Close frame with its status, or `None` when it carried no code.
    Close(Option<CloseFrame>),
}

/// A fragmented data message still being received.
#[derive(Debug)]
struct OpenMessage {
    text: bool,
    /// Whether its bytes are validated as UTF-8 on arrival (text without RSV bits).
    validated: bool,
    /// Payload bytes received so far.
    size: u64,
    /// The first fragment, kept without copying until a second one arrives.
    first: Option<Bytes>,
    /// All fragments once there is more than one.
    joined: BytesMut,
    /// For a compressed message: what was inflated so far.
    inflated: Option<Vec<u8>>,
}

impl OpenMessage {
    fn append(&mut self, payload: Bytes) {
        if let Some(first) = self.first.take() {
            self.joined.reserve(first.len() + payload.len());
            self.joined.extend_from_slice(&first);
        }
        self.joined.extend_from_slice(&payload);
    }

    fn into_payload(mut self) -> Bytes {
        match self.first.take() {
            Some(first) if self.joined.is_empty() => first,
            _ => self.joined.freeze(),
        }
    }
}

/// Turns frames into messages, enforcing ordering, size and UTF-8 rules.
#[derive(Debug)]
pub struct Reassembler {
    max_message_size: usize,
    inflater: Option<Inflater>,
    open: Option<OpenMessage>,
    utf8: Utf8Validator,
    /// Bytes of the current frame's payload already fed to `utf8`.
    frame_validated: usize,
}

impl Reassembler {
    /// A reassembler refusing messages over `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        Self {
            max_message_size,
            inflater: None,
            open: None,
            utf8: Utf8Validator::new(),
            frame_validated: 0,
        }
    }

    /// A reassembler that inflates compressed messages (permessage-deflate negotiated).
    pub fn with_inflater(max_message_size: usize, inflater: Inflater) -> Self {
        Self {
            inflater: Some(inflater),
            ..Self::new(max_message_size)
        }
    }

    /// Whether a fragmented message is open (its first frame arrived, its last did not).
    pub fn in_message(&self) -> bool {
        self.open.is_some()
    }

    /// Checks a frame's header against the message in progress, before its payload.
    ///
    /// # Errors
    /// [`ProtocolError::UnexpectedContinuation`], [`ProtocolError::ExpectedContinuation`],
    /// [`ProtocolError::MessageTooLarge`], and [`ProtocolError::ReservedBits`] for RSV bits
    /// on a control or continuation frame.
    pub fn check_header(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let so_far = match (header.opcode, &self.open) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(open)) => open.size,
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation(header.opcode))
            }
            (OpCode::Text | OpCode::Binary, None) => 0,
            (OpCode::Close | OpCode::Ping | OpCode::Pong, _) => {
                if header.rsv != 0 {
                    return Err(ProtocolError::ReservedBits(header.rsv));
                }
                return Ok(());
            }
        };
        if header.opcode == OpCode::Continuation && header.rsv != 0 {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        if self.compressed(header) || self.open.as_ref().is_some_and(|o| o.inflated.is_some()) {
            // A compressed message is held to the limit as it is inflated.
            return Ok(());
        }
        let size = so_far.saturating_add(header.payload_len);
        if size > self.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge {
                size,
                max: self.max_message_size,
            });
        }
        Ok(())
    }

    /// Whether this header starts a compressed message.
    fn compressed(&self, header: &FrameHeader) -> bool {
        self.inflater.is_some()
            && matches!(header.opcode, OpCode::Text | OpCode::Binary)
            && header.rsv & RSV1 != 0
    }

    /// Whether the frame with this header carries (part of) a text message whose bytes are
    /// validated on arrival.
    pub fn is_text(&self, header: &FrameHeader) -> bool {
        match header.opcode {
            OpCode::Text => header.rsv == 0,
            OpCode::Continuation => self
                .open
                .as_ref()
                .is_some_and(|open| open.text && open.validated),
            _ => false,
        }
    }

    /// Validates the newly arrived part of an incomplete text frame's payload; `partial`
    /// is all of that payload that has arrived so far.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidUtf8`] at the first invalid byte.
    pub fn validate_partial(&mut self, partial: &[u8]) -> Result<(), ProtocolError> {
        if let Some(new) = partial.get(self.frame_validated..) {
            self.utf8.feed(new)?;
            self.frame_validated = partial.len();
        }
        Ok(())
    }

    /// Takes a complete frame (already passed through [`Reassembler::check_header`]) and
    /// returns a message when one is complete.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidUtf8`] for bad text; Close payload errors from
    /// [`CloseFrame::parse`].
    pub fn push(&mut self, frame: Frame) -> Result<Option<Message>, ProtocolError> {
        let Frame { header, payload } = frame;
        let text = self.is_text(&header);
        if text {
            let new = payload.get(self.frame_validated..).unwrap_or_default();
            self.utf8.feed(new)?;
        }
        self.frame_validated = 0;
        let compressed = self.compressed(&header);
        if compressed || self.open.as_ref().is_some_and(|o| o.inflated.is_some()) {
            if compressed {
                self.open = Some(OpenMessage {
                    text: header.opcode == OpCode::Text,
                    // Validated as it is inflated, not as it arrives.
                    validated: false,
                    size: 0,
                    first: None,
                    joined: BytesMut::new(),
                    inflated: Some(Vec::new()),
                });
            }
            if header.opcode.is_data_or_continuation() {
                return self.push_compressed(header.fin, &payload);
            }
        }
        let message = match header.opcode {
            OpCode::Ping => Message::Ping(payload),
            OpCode::Pong => Message::Pong(payload),
            OpCode::Close => Message::Close(CloseFrame::parse(payload)?),
            OpCode::Text | OpCode::Binary if header.fin => {
                self.finish(header.opcode == OpCode::Text, text, payload)?
            }
            OpCode::Text | OpCode::Binary => {
                self.open = Some(OpenMessage {
                    text: header.opcode == OpCode::Text,
                    validated: text,
                    size: payload.len() as u64,
                    first: Some(payload),
                    joined: BytesMut::new(),
                    inflated: None,
                });
                return Ok(None);
            }
            OpCode::Continuation => {
                let Some(open) = self.open.as_mut() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                open.size += payload.len() as u64;
                open.append(payload);
                if !header.fin {
                    return Ok(None);
                }
                let Some(open) = self.open.take() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                let (text, validated) = (open.text, open.validated);
                self.finish(text, validated, open.into_payload())?
            }
        };
        Ok(Some(message))
    }

    /// Turns a whole unfragmented, uncompressed Text or Binary frame (FIN set, no RSV
    /// bits) into its message, when no fragmented message is open: the one-step
    /// equivalent of [`check_header`](Self::check_header) and [`push`](Self::push) for
    /// such a frame, with the same errors.
    ///
    /// # Errors
    /// [`ProtocolError::ExpectedContinuation`] while a fragmented message is open,
    /// [`ProtocolError::MessageTooLarge`], and [`ProtocolError::InvalidUtf8`] for bad text.
    pub fn push_whole(&mut self, text: bool, payload: Bytes) -> Result<Message, ProtocolError> {
        if self.open.is_some() {
            let opcode = if text { OpCode::Text } else { OpCode::Binary };
            return Err(ProtocolError::ExpectedContinuation(opcode));
        }
        if payload.len() > self.max_message_size {
            return Err(ProtocolError::MessageTooLarge {
                size: payload.len() as u64,
                max: self.max_message_size,
            });
        }
        // The whole payload is here: validated in one piece, as text that was not
        // validated on arrival is.
        self.finish(text, false, payload)
    }

    /// Inflates a frame of a compressed message; returns the message after its last frame.
    fn push_compressed(
        &mut self,
        fin: bool,
        payload: &[u8],
    ) -> Result<Option<Message>, ProtocolError> {
        let (Some(open), Some(inflater)) = (self.open.as_mut(), self.inflater.as_mut()) else {
            return Err(ProtocolError::ReservedBits(RSV1));
        };
        let Some(inflated) = open.inflated.as_mut() else {
            return Err(ProtocolError::ReservedBits(RSV1));
        };
        let before = inflated.len();
        inflater.inflate(payload, inflated, self.max_message_size)?;
        if fin {
            inflater.finish_message(inflated, self.max_message_size)?;
        }
        if open.text {
            self.utf8.feed(&inflated[before..])?;
        }
        if !fin {
            return Ok(None);
        }
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        let payload = Bytes::from(open.inflated.unwrap_or_default());
        self.finish(open.text, true, payload).map(Some)
    }

    fn finish(
        &mut self,
        text: bool,
        validated: bool,
        payload: Bytes,
    ) -> Result<Message, ProtocolError> {
        if !text {
            return Ok(Message::Binary(payload));
        }
        if validated {
            self.utf8.finish()?;
        } else {
            // Text not validated on arrival (an extension's, with RSV bits, or a whole
            // frame taken in one step): check it whole before it may become a string.
            let mut utf8 = Utf8Validator::new();
            utf8.feed(&payload)?;
            utf8.finish()?;
        }
        // SAFETY: every byte of `payload` went through `self.utf8` (or, for text that was
        // not validated on arrival, through a fresh validator just above), which accepted
        // it as a complete UTF-8 sequence (`finish` rejects a message that ends inside a
        // code point). Covered by `tests::text_is_validated_before_it_becomes_a_string` and the
        // property tests in tests/proto_props.rs.
        Ok(Message::Text(unsafe {
            ByteString::from_bytes_unchecked(payload)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Frame {
        Frame {
            header: FrameHeader {
                fin,
                rsv: 0,
                opcode,
                mask: None,
                payload_len: payload.len() as u64,
            },
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn feed(r: &mut Reassembler, f: Frame) -> Result<Option<Message>, ProtocolError> {
        r.check_header(&f.header)?;
        r.push(f)
    }

    #[test]
    fn fragments_with_an_interleaved_ping_make_one_message() {
        let mut r = Reassembler::new(1024);
        assert_eq!(
            feed(&mut r, frame(OpCode::Text, false, b"fragment1 ")),
            Ok(None)
        );
        assert_eq!(
            feed(&mut r, frame(OpCode::Ping, true, b"p")),
            Ok(Some(Message::Ping(Bytes::from_static(b"p"))))
        );
        assert_eq!(
            feed(&mut r, frame(OpCode::Continuation, false, b"fragment2 ")),
            Ok(None)
        );
        assert_eq!(
            feed(&mut r, frame(OpCode::Continuation, true, b"end")),
            Ok(Some(Message::Text("fragment1 fragment2 end".into())))
        );
        assert!(!r.in_message());
    }

    #[test]
    fn continuation_without_a_start_is_1002() {
        let mut r = Reassembler::new(1024);
        let err = feed(&mut r, frame(OpCode::Continuation, true, b"x")).unwrap_err();
        assert_eq!(err, ProtocolError::UnexpectedContinuation);
        assert_eq!(err.close_code().as_u16(), 1002);
    }

    #[test]
    fn new_data_frame_inside_a_fragmented_message_is_1002() {
        let mut r = Reassembler::new(1024);
        feed(&mut r, frame(OpCode::Binary, false, b"a")).unwrap();
        let err = feed(&mut r, frame(OpCode::Text, true, b"b")).unwrap_err();
        assert_eq!(err, ProtocolError::ExpectedContinuation(OpCode::Text));
        assert_eq!(err.close_code().as_u16(), 1002);
    }

    #[test]
    fn message_over_the_limit_is_1009_from_the_header() {
        let mut r = Reassembler::new(10);
        feed(&mut r, frame(OpCode::Binary, false, &[0; 6])).unwrap();
        let mut next = frame(OpCode::Continuation, true, &[]);
        next.header.payload_len = 5; // declared only; no payload needed to refuse it
        let err = r.check_header(&next.header).unwrap_err();
        assert_eq!(err, ProtocolError::MessageTooLarge { size: 11, max: 10 });
        assert_eq!(err.close_code().as_u16(), 1009);
    }

    #[test]
    fn invalid_utf8_split_across_fragments_is_1007_at_the_bad_fragment() {
        let mut r = Reassembler::new(1024);
        // U+1D11E split 2+2, then a bad continuation byte in the third fragment.
        feed(&mut r, frame(OpCode::Text, false, &[b'a', 0xF0, 0x9D])).unwrap();
        feed(&mut r, frame(OpCode::Continuation, false, &[0x84, 0x9E])).unwrap();
        let err = feed(&mut r, frame(OpCode::Continuation, false, &[0xF0, 0x28])).unwrap_err();
        assert_eq!(err.close_code().as_u16(), 1007);
    }

    #[test]
    fn partial_text_frames_fail_before_they_complete() {
        let mut r = Reassembler::new(1024);
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Text,
            mask: None,
            payload_len: 100,
        };
        r.check_header(&header).unwrap();
        assert!(r.is_text(&header));
        assert_eq!(r.validate_partial(b"good "), Ok(()));
        let err = r
            .validate_partial(&[b'g', b'o', b'o', b'd', b' ', 0xC0])
            .unwrap_err();
        assert_eq!(err, ProtocolError::InvalidUtf8 { offset: 5 });
    }

    #[test]
    fn text_is_validated_before_it_becomes_a_string() {
        let mut r = Reassembler::new(1024);
        let err = feed(&mut r, frame(OpCode::Text, true, &[0xE2, 0x82])).unwrap_err();
        assert_eq!(err.close_code().as_u16(), 1007);
        let mut r = Reassembler::new(1024);
        assert_eq!(
            feed(&mut r, frame(OpCode::Text, true, "€".as_bytes())),
            Ok(Some(Message::Text("€".into())))
        );
    }

    #[test]
    fn compressed_text_in_many_fragments_is_inflated_and_validated() {
        use crate::proto::deflate::{DeflateConfig, Deflater};
        let params = DeflateConfig::default()
            .accept("permessage-deflate")
            .unwrap();
        let mut deflater = Deflater::new(&params, 1);
        let mut r = Reassembler::with_inflater(1 << 20, Inflater::new(&params));
        let text: String = (0..300).map(|n| format!("κόσμε {n} ")).collect();
        for _ in 0..3 {
            let compressed = deflater.compress(text.as_bytes());
            let pieces: Vec<&[u8]> = compressed.chunks(64).collect();
            let mut got = None;
            for (i, piece) in pieces.iter().enumerate() {
                let mut f = frame(
                    if i == 0 {
                        OpCode::Text
                    } else {
                        OpCode::Continuation
                    },
                    i + 1 == pieces.len(),
                    piece,
                );
                if i == 0 {
                    f.header.rsv = RSV1;
                }
                got = feed(&mut r, f).unwrap();
            }
            assert_eq!(got, Some(Message::Text(text.as_str().into())));
        }
    }

    #[test]
    fn compressed_invalid_utf8_is_1007() {
        use crate::proto::deflate::{DeflateConfig, Deflater};
        let params = DeflateConfig::default()
            .accept("permessage-deflate")
            .unwrap();
        let compressed = Deflater::new(&params, 1).compress(&[b'a', 0xFF, b'b']);
        let mut r = Reassembler::with_inflater(1 << 20, Inflater::new(&params));
        let mut f = frame(OpCode::Text, true, &compressed);
        f.header.rsv = RSV1;
        assert_eq!(feed(&mut r, f).unwrap_err().close_code().as_u16(), 1007);
    }

    #[test]
    fn control_frames_with_rsv_bits_are_1002() {
        let r = Reassembler::new(1024);
        let header = FrameHeader {
            fin: true,
            rsv: 0b100,
            opcode: OpCode::Ping,
            mask: None,
            payload_len: 0,
        };
        assert_eq!(
            r.check_header(&header),
            Err(ProtocolError::ReservedBits(0b100))
        );
    }

    #[test]
    fn close_frames_are_parsed_and_checked() {
        let mut r = Reassembler::new(1024);
        assert_eq!(
            feed(&mut r, frame(OpCode::Close, true, &[])),
            Ok(Some(Message::Close(None)))
        );
        let err = feed(&mut r, frame(OpCode::Close, true, &[0x03, 0xED])).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidCloseCode(1005));
    }
}
