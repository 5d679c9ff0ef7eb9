//! The inbound side of a connection: read buffer in, messages out.

use bytes::BytesMut;

use super::decoder::FrameDecoder;
use super::deflate::Inflater;
use super::error::ProtocolError;
use super::frame::RSV1;
use super::reassembly::{Message, Reassembler};

/// Limits and negotiated options for the inbound side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverLimits {
    /// Largest frame payload accepted, in bytes.
    pub max_frame_size: usize,
    /// Largest message accepted (all fragments together), in bytes.
    pub max_message_size: usize,
    /// RSV bits an extension negotiated (`0b100` = RSV1 for permessage-deflate).
    pub allowed_rsv: u8,
}

/// Decodes, validates and reassembles everything the server sends.
///
/// Feed it the read buffer after each read and call [`Receiver::poll`] until it returns
/// `Ok(None)`. Once it returns an error the connection must be failed with that error's
/// close code; the receiver is not meant to be used after that.
#[derive(Debug)]
pub struct Receiver {
    frames: FrameDecoder,
    messages: Reassembler,
    /// Whether the pending frame's header already passed the message-level checks.
    header_checked: bool,
}

impl Receiver {
    /// A receiver with these limits.
    pub fn new(limits: ReceiverLimits) -> Self {
        Self {
            frames: FrameDecoder::new(limits.max_frame_size, limits.allowed_rsv),
            messages: Reassembler::new(limits.max_message_size),
            header_checked: false,
        }
    }

    /// A receiver that inflates compressed messages (permessage-deflate negotiated; RSV1
    /// is allowed whatever `limits.allowed_rsv` says).
    pub fn with_inflater(limits: ReceiverLimits, inflater: Inflater) -> Self {
        Self {
            frames: FrameDecoder::new(limits.max_frame_size, limits.allowed_rsv | RSV1),
            messages: Reassembler::with_inflater(limits.max_message_size, inflater),
            header_checked: false,
        }
    }

    /// Bytes still missing from the frame whose payload is arriving (0 if none): a hint
    /// for sizing the next read.
    pub fn missing(&self, src: &BytesMut) -> u64 {
        self.frames.missing(src)
    }

    /// Whether a fragmented message has started and not yet ended.
    pub fn in_message(&self) -> bool {
        self.messages.in_message()
    }

    /// Takes the next complete message or control frame off `src`.
    ///
    /// Returns `Ok(None)` when `src` holds no complete message; the bytes of a message in
    /// progress are validated as they arrive, so an error can come before the message is
    /// complete.
    ///
    /// # Errors
    /// Any [`ProtocolError`]: the connection must then be failed with its close code.
    pub fn poll(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        // The common case, a whole small data message, in one step (`push_whole` refuses it,
        // as the general path would, while a fragmented message is open); the general path
        // below handles everything else the same way, one layer at a time.
        if let Some((text, payload)) = self.frames.decode_whole_data(src) {
            return self.messages.push_whole(text, payload).map(Some);
        }
        loop {
            let Some(header) = self.frames.poll_header(src)? else {
                return Ok(None);
            };
            if !self.header_checked {
                self.messages.check_header(&header)?;
                self.header_checked = true;
            }
            let Some(frame) = self.frames.decode(src)? else {
                if self.messages.is_text(&header) {
                    self.messages
                        .validate_partial(self.frames.partial_payload(src))?;
                }
                return Ok(None);
            };
            self.header_checked = false;
            if let Some(message) = self.messages.push(frame)? {
                return Ok(Some(message));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::write_frame;
    use crate::proto::opcode::OpCode;

    fn limits() -> ReceiverLimits {
        ReceiverLimits {
            max_frame_size: 1 << 16,
            max_message_size: 1 << 20,
            allowed_rsv: 0,
        }
    }

    #[test]
    fn invalid_utf8_fails_before_the_frame_is_complete() {
        let mut wire = BytesMut::new();
        let mut payload = b"valid text ".to_vec();
        payload.push(0xFF);
        payload.extend_from_slice(&[b'x'; 50]);
        write_frame(&mut wire, OpCode::Text, true, 0, &payload, None);
        // Deliver the header and the payload up to and including the bad byte only.
        let mut buf = wire.split_to(2 + 12);
        let err = Receiver::new(limits()).poll(&mut buf).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidUtf8 { offset: 11 });
        assert_eq!(err.close_code().as_u16(), 1007);
    }

    /// The first error of `receiver` fed `wire` whole, and fed it byte by byte (so that
    /// every frame goes the general path).
    fn first_errors(limits: ReceiverLimits, wire: &[u8]) -> [Option<ProtocolError>; 2] {
        let whole = {
            let mut receiver = Receiver::new(limits);
            let mut buf = BytesMut::from(wire);
            loop {
                match receiver.poll(&mut buf) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break None,
                    Err(error) => break Some(error),
                }
            }
        };
        let mut receiver = Receiver::new(limits);
        let mut buf = BytesMut::new();
        let byte_by_byte = wire.iter().find_map(|byte| {
            buf.extend_from_slice(&[*byte]);
            std::iter::from_fn(|| receiver.poll(&mut buf).transpose()).find_map(Result::err)
        });
        [whole, byte_by_byte]
    }

    #[test]
    fn a_whole_frame_fails_as_the_general_path_fails_it() {
        let frames = |list: &[(OpCode, bool, &[u8])]| {
            let mut wire = BytesMut::new();
            for (opcode, fin, payload) in list {
                write_frame(&mut wire, *opcode, *fin, 0, payload, None);
            }
            wire
        };
        let small = ReceiverLimits {
            max_message_size: 3,
            ..limits()
        };
        let cases = [
            (limits(), frames(&[(OpCode::Text, true, b"ok \xF0\x28")])),
            (small, frames(&[(OpCode::Binary, true, b"four")])),
            (
                limits(),
                frames(&[(OpCode::Text, false, b"a"), (OpCode::Binary, true, b"b")]),
            ),
        ];
        let expected = [
            ProtocolError::InvalidUtf8 { offset: 4 },
            ProtocolError::MessageTooLarge { size: 4, max: 3 },
            ProtocolError::ExpectedContinuation(OpCode::Binary),
        ];
        for ((limits, wire), expected) in cases.into_iter().zip(expected) {
            let expected = Some(expected);
            assert_eq!(first_errors(limits, &wire), [expected.clone(), expected]);
        }
    }

    #[test]
    fn many_messages_in_one_buffer() {
        let mut wire = BytesMut::new();
        write_frame(&mut wire, OpCode::Text, true, 0, b"one", None);
        write_frame(&mut wire, OpCode::Binary, false, 0, b"tw", None);
        write_frame(&mut wire, OpCode::Pong, true, 0, b"", None);
        write_frame(&mut wire, OpCode::Continuation, true, 0, b"o", None);
        let mut receiver = Receiver::new(limits());
        let mut got = Vec::new();
        while let Some(message) = receiver.poll(&mut wire).unwrap() {
            got.push(message);
        }
        assert_eq!(
            got,
            vec![
                Message::Text("one".into()),
                Message::Pong(bytes::Bytes::new()),
                Message::Binary(bytes::Bytes::from_static(b"two")),
            ]
        );
    }
}
