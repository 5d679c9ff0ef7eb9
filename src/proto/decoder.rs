//! The incremental frame decoder: bytes in, frames out.
//!
//! [`FrameDecoder`] takes the header off the buffer as soon as it is complete, checks it
//! against the connection's rules, and waits for the payload. It never reserves memory for
//! what a header declares: the buffer grows only as bytes arrive, and a frame over
//! `max_frame_size` is refused from its header, before any of its payload is buffered.

use bytes::{Buf, Bytes, BytesMut};

use super::error::ProtocolError;
use super::frame::FrameHeader;

/// A complete frame received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header (its mask is always `None`: servers do not mask).
    pub header: FrameHeader,
    /// The payload, split off the read buffer without copying.
    pub payload: Bytes,
}

/// Splits frames off a read buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_size: usize,
    allowed_rsv: u8,
    /// The header of the frame whose payload is still arriving.
    pending: Option<FrameHeader>,
}

impl FrameDecoder {
    /// A decoder refusing frames over `max_frame_size` bytes and RSV bits outside
    /// `allowed_rsv` (a 3-bit mask, RSV1 = `0b100`; 0 unless an extension was negotiated).
    pub fn new(max_frame_size: usize, allowed_rsv: u8) -> Self {
        Self {
            max_frame_size,
            allowed_rsv,
            pending: None,
        }
    }

    /// Parses (and consumes) the next header if it has not been yet, and returns the
    /// header of the frame in progress, or `None` while its header is incomplete.
    ///
    /// # Errors
    /// Header errors from [`FrameHeader::parse`], plus [`ProtocolError::ReservedBits`],
    /// [`ProtocolError::MaskedFrame`] and [`ProtocolError::FrameTooLarge`].
    pub fn poll_header(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<FrameHeader>, ProtocolError> {
        if let Some(header) = self.pending {
            return Ok(Some(header));
        }
        let Some((header, header_len)) = FrameHeader::parse(src)? else {
            return Ok(None);
        };
        if header.rsv & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        if header.mask.is_some() {
            return Err(ProtocolError::MaskedFrame);
        }
        if header.payload_len > self.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge {
                size: header.payload_len,
                max: self.max_frame_size,
            });
        }
        src.advance(header_len);
        self.pending = Some(header);
        Ok(Some(header))
    }

    /// The part of the pending frame's payload that has arrived so far (empty when no
    /// frame is pending).
    pub fn partial_payload<'a>(&self, src: &'a BytesMut) -> &'a [u8] {
        match self.pending {
            Some(header) => &src[..src.len().min(header.payload_len as usize)],
            None => &[],
        }
    }

    /// Bytes still missing from the pending frame's payload (0 when no frame is pending or
    /// it is complete). The caller may size its next read by it; the decoder itself never
    /// reserves memory for a declared length.
    pub fn missing(&self, src: &BytesMut) -> u64 {
        match self.pending {
            Some(header) => header.payload_len.saturating_sub(src.len() as u64),
            None => 0,
        }
    }

    /// Takes a whole unfragmented data frame off `src` in one step, when no frame is
    /// pending and `src` starts with a complete frame of the shape nearly every frame of a
    /// message stream has: FIN set, no RSV bits, Text or Binary, unmasked, a payload under
    /// 64 KiB and within `max_frame_size`. Returns whether it is text, and the payload.
    ///
    /// Returns `None`, and takes nothing, for every other frame (including every one that
    /// breaks a rule): [`decode`](Self::decode) then handles and checks it.
    pub fn decode_whole_data(&mut self, src: &mut BytesMut) -> Option<(bool, Bytes)> {
        if self.pending.is_some() {
            return None;
        }
        let (text, len, header_len) = match *src.get(..2)? {
            [first @ (0x81 | 0x82), short @ 0..=125] => (first == 0x81, usize::from(short), 2),
            [first @ (0x81 | 0x82), 126] => {
                let [high, low] = *src.get(2..4)? else {
                    return None;
                };
                (
                    first == 0x81,
                    usize::from(u16::from_be_bytes([high, low])),
                    4,
                )
            }
            _ => return None,
        };
        if len > self.max_frame_size || src.len() - header_len < len {
            return None;
        }
        let mut payload = src.split_to(header_len + len).freeze();
        payload.advance(header_len);
        Some((text, payload))
    }

    /// Decodes the next frame, or returns `None` until all of it has arrived.
    ///
    /// # Errors
    /// As [`FrameDecoder::poll_header`].
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some(header) = self.poll_header(src)? else {
            return Ok(None);
        };
        // Cannot truncate: payload_len <= max_frame_size, a usize.
        let len = header.payload_len as usize;
        if src.len() < len {
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(Frame {
            header,
            payload: src.split_to(len).freeze(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::{write_frame, RSV1};
    use crate::proto::opcode::OpCode;

    fn encoded(
        opcode: OpCode,
        fin: bool,
        rsv: u8,
        payload: &[u8],
        mask: Option<[u8; 4]>,
    ) -> BytesMut {
        let mut dst = BytesMut::new();
        write_frame(&mut dst, opcode, fin, rsv, payload, mask);
        dst
    }

    #[test]
    fn decodes_byte_by_byte() {
        let wire = encoded(OpCode::Binary, true, 0, &[7u8; 300], None);
        let mut decoder = FrameDecoder::new(1 << 20, 0);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in wire.iter() {
            buf.extend_from_slice(&[*byte]);
            if let Some(frame) = decoder.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(&frames[0].payload[..], &[7u8; 300][..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn rsv_bits_without_extension_are_1002() {
        for rsv in 1..8u8 {
            let mut buf = encoded(OpCode::Text, true, rsv, b"x", None);
            let err = FrameDecoder::new(100, 0).decode(&mut buf).unwrap_err();
            assert_eq!(err, ProtocolError::ReservedBits(rsv));
            assert_eq!(err.close_code().as_u16(), 1002);
        }
        let mut buf = encoded(OpCode::Text, true, RSV1, b"x", None);
        assert!(FrameDecoder::new(100, RSV1).decode(&mut buf).is_ok());
    }

    #[test]
    fn masked_frames_from_the_server_are_1002() {
        let mut buf = encoded(OpCode::Text, true, 0, b"x", Some([1, 2, 3, 4]));
        let err = FrameDecoder::new(100, 0).decode(&mut buf).unwrap_err();
        assert_eq!(err, ProtocolError::MaskedFrame);
        assert_eq!(err.close_code().as_u16(), 1002);
    }

    #[test]
    fn oversized_frames_are_1009_from_the_header_alone() {
        // Only the header of a 1 GiB frame: refused before any payload arrives.
        let mut buf = BytesMut::from(&[0x82u8, 127, 0, 0, 0, 0, 0x40, 0, 0, 0][..]);
        let err = FrameDecoder::new(1 << 20, 0).decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::FrameTooLarge {
                size: 1 << 30,
                max: 1 << 20
            }
        );
        assert_eq!(err.close_code().as_u16(), 1009);
    }

    #[test]
    fn a_declared_length_reserves_nothing() {
        let mut buf = BytesMut::from(&[0x82u8, 127, 0, 0, 0, 0, 0x3F, 0, 0, 0][..]);
        let capacity = buf.capacity();
        let mut decoder = FrameDecoder::new(usize::MAX, 0);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= capacity);
    }

    #[test]
    fn whole_data_frames_are_taken_in_one_step() {
        let mut decoder = FrameDecoder::new(1 << 20, 0);
        for (opcode, len) in [
            (OpCode::Text, 0),
            (OpCode::Binary, 125),
            (OpCode::Text, 126),
        ] {
            for len in [len, 65_535] {
                let payload = vec![b'a'; len];
                let mut buf = encoded(opcode, true, 0, &payload, None);
                buf.extend_from_slice(b"next");
                let (text, got) = decoder.decode_whole_data(&mut buf).unwrap();
                assert_eq!((text, &got[..]), (opcode == OpCode::Text, &payload[..]));
                assert_eq!(&buf[..], b"next");
            }
        }
    }

    #[test]
    fn other_frames_are_left_to_the_general_path_untouched() {
        let cases = [
            encoded(OpCode::Text, false, 0, b"x", None), // not final
            encoded(OpCode::Binary, true, RSV1, b"x", None), // RSV bit
            encoded(OpCode::Binary, true, 0, b"x", Some([1, 2, 3, 4])),
            encoded(OpCode::Ping, true, 0, b"x", None),
            encoded(OpCode::Continuation, true, 0, b"x", None),
            encoded(OpCode::Binary, true, 0, &[0; 65_536], None), // 64-bit length
            encoded(OpCode::Binary, true, 0, &[0; 101], None),    // over max_frame_size
        ];
        for wire in cases {
            let mut buf = wire.clone();
            assert_eq!(
                FrameDecoder::new(100, RSV1).decode_whole_data(&mut buf),
                None
            );
            assert_eq!(buf, wire);
        }
        // Incomplete, or while another frame's payload is pending.
        let wire = encoded(OpCode::Binary, true, 0, b"hello", None);
        let mut buf = BytesMut::from(&wire[..6]);
        let mut decoder = FrameDecoder::new(100, 0);
        assert_eq!(decoder.decode_whole_data(&mut buf), None);
        assert_eq!(decoder.decode(&mut buf), Ok(None)); // now pending
        buf.extend_from_slice(&wire[6..]);
        buf.extend_from_slice(&wire);
        assert_eq!(decoder.decode_whole_data(&mut buf), None);
    }

    #[test]
    fn partial_payload_shows_what_has_arrived() {
        let wire = encoded(OpCode::Text, true, 0, b"hello", None);
        let mut buf = BytesMut::from(&wire[..4]);
        let mut decoder = FrameDecoder::new(100, 0);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(decoder.partial_payload(&buf), b"he");
        assert_eq!(decoder.missing(&buf), 3);
        buf.extend_from_slice(&wire[4..]);
        assert_eq!(
            &decoder.decode(&mut buf).unwrap().unwrap().payload[..],
            b"hello"
        );
        assert_eq!(decoder.partial_payload(&buf), b"");
    }
}
