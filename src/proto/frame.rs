//! Frame headers (RFC 6455 §5.2): parsing from bytes and writing to bytes.

use bytes::BytesMut;

use super::error::ProtocolError;
use super::mask::{apply_mask, extend_masked, mask_block, BLOCK};
use super::opcode::OpCode;

/// Largest payload a control frame may carry (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest possible header: 2 bytes, an 8-byte length and a 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// The RSV1 bit, as it appears in [`FrameHeader::rsv`] (used by permessage-deflate).
pub const RSV1: u8 = 0b100;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this frame ends its message.
    pub fin: bool,
    /// RSV1, RSV2 and RSV3 as a 3-bit number (RSV1 = `0b100`).
    pub rsv: u8,
    /// What the payload means.
    pub opcode: OpCode,
    /// The masking key, when the mask bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length as declared.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `src` without consuming it.
    ///
    /// Returns `Ok(None)` while `src` holds fewer bytes than the header needs, otherwise the
    /// header and its length in bytes. Checks only what the header alone decides: reserved
    /// opcodes, the 64-bit length's top bit, and control-frame length and FIN. RSV bits,
    /// masking and size limits depend on the connection and are left to the caller.
    ///
    /// # Errors
    /// [`ProtocolError::ReservedOpcode`], [`ProtocolError::InvalidLength`],
    /// [`ProtocolError::ControlFrameTooLong`], [`ProtocolError::FragmentedControlFrame`].
    pub fn parse(src: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let (first, second) = match src {
            [first, second, ..] => (*first, *second),
            _ => return Ok(None),
        };
        let fin = first & 0x80 != 0;
        let rsv = (first >> 4) & 0b111;
        let opcode_bits = first & 0x0F;
        let opcode =
            OpCode::from_u8(opcode_bits).ok_or(ProtocolError::ReservedOpcode(opcode_bits))?;
        let masked = second & 0x80 != 0;
        let (payload_len, mut len) = match second & 0x7F {
            126 => match src.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match src.get(2..10) {
                Some(b) => {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(b);
                    let value = u64::from_be_bytes(raw);
                    if value >> 63 != 0 {
                        return Err(ProtocolError::InvalidLength);
                    }
                    (value, 10)
                }
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        if opcode.is_control() {
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong(payload_len));
            }
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame(opcode));
            }
        }
        let mask = if masked {
            match src.get(len..len + 4) {
                Some(b) => {
                    len += 4;
                    Some([b[0], b[1], b[2], b[3]])
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        let header = Self {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, len)))
    }

    /// Length of this header on the wire.
    pub fn encoded_len(&self) -> usize {
        header_len(self.payload_len, self.mask.is_some())
    }

    /// Appends this header to `dst`, with the shortest length encoding (§5.2).
    pub fn write(&self, dst: &mut BytesMut) {
        // Assembled on the stack and appended once.
        let mut header = [0u8; MAX_HEADER_LEN];
        let len = self.write_to(&mut header);
        dst.extend_from_slice(&header[..len]);
    }

    /// Writes this header at the start of `out` (at least [`MAX_HEADER_LEN`] bytes long) and
    /// returns its length.
    fn write_to(&self, out: &mut [u8]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = 2;
        match self.payload_len {
            short @ 0..=125 => out[1] = mask_bit | short as u8,
            medium @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(medium as u16).to_be_bytes());
                len += 2;
            }
            long => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&long.to_be_bytes());
                len += 8;
            }
        }
        if let Some(key) = self.mask {
            out[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        len
    }
}

/// Length on the wire of the header of a frame with `payload_len` payload bytes.
pub fn header_len(payload_len: u64, masked: bool) -> usize {
    let length_bytes = match payload_len {
        0..=125 => 0,
        126..=0xFFFF => 2,
        _ => 8,
    };
    2 + length_bytes + if masked { 4 } else { 0 }
}

/// Longest payload [`write_frame`] assembles on the stack with its header.
const SMALL_PAYLOAD: usize = BLOCK;

/// Appends one whole frame to `dst`: the header, then `payload`, masked with `mask` when
/// given.
pub fn write_frame(
    dst: &mut BytesMut,
    opcode: OpCode,
    fin: bool,
    rsv: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    if payload.len() <= SMALL_PAYLOAD {
        // Assembled and masked on the stack, then appended with one copy.
        let mut frame = [0u8; MAX_HEADER_LEN + SMALL_PAYLOAD];
        let start = header.write_to(&mut frame);
        let end = start + payload.len();
        frame[start..end].copy_from_slice(payload);
        if let Some(key) = mask {
            match frame[start..].first_chunk_mut::<SMALL_PAYLOAD>() {
                // The whole fixed-size area, in a loop of constant length: bytes past the
                // payload are scratch and never appended. (A header here is at most 6
                // bytes, so the area always fits; the other arm only keeps that local.)
                Some(scratch) => mask_block(scratch, key),
                None => apply_mask(&mut frame[start..end], key),
            }
        }
        dst.extend_from_slice(&frame[..end]);
        return;
    }
    dst.reserve(header.encoded_len() + payload.len());
    header.write(dst);
    match mask {
        Some(key) => extend_masked(dst, payload, key),
        None => dst.extend_from_slice(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn length_encodings_switch_at_125_and_65535() {
        for (len, wire_len) in [
            (0, 2),
            (125, 2),
            (126, 4),
            (65_535, 4),
            (65_536, 10),
            (u64::MAX >> 1, 10),
        ] {
            let h = header(OpCode::Binary, len, None);
            let mut dst = BytesMut::new();
            h.write(&mut dst);
            assert_eq!(dst.len(), wire_len, "len {len}");
            assert_eq!(h.encoded_len(), wire_len);
            assert_eq!(FrameHeader::parse(&dst), Ok(Some((h, wire_len))));
        }
    }

    #[test]
    fn partial_headers_need_more_bytes() {
        let h = header(OpCode::Binary, 70_000, Some([1, 2, 3, 4]));
        let mut dst = BytesMut::new();
        h.write(&mut dst);
        for cut in 0..dst.len() {
            assert_eq!(FrameHeader::parse(&dst[..cut]), Ok(None), "cut {cut}");
        }
        assert_eq!(FrameHeader::parse(&dst), Ok(Some((h, 14))));
    }

    #[test]
    fn reserved_opcodes_are_1002() {
        for op in [0x3, 0x7, 0xB, 0xF] {
            let err = FrameHeader::parse(&[0x80 | op, 0]).unwrap_err();
            assert_eq!(err, ProtocolError::ReservedOpcode(op));
            assert_eq!(err.close_code().as_u16(), 1002);
        }
    }

    #[test]
    fn control_frames_over_125_bytes_are_1002() {
        let err = FrameHeader::parse(&[0x89, 126, 0, 126]).unwrap_err();
        assert_eq!(err, ProtocolError::ControlFrameTooLong(126));
        assert_eq!(err.close_code().as_u16(), 1002);
    }

    #[test]
    fn fragmented_control_frames_are_1002() {
        let err = FrameHeader::parse(&[0x09, 0]).unwrap_err();
        assert_eq!(err, ProtocolError::FragmentedControlFrame(OpCode::Ping));
        assert_eq!(err.close_code().as_u16(), 1002);
    }

    #[test]
    fn top_bit_of_64_bit_length_is_1002() {
        let err = FrameHeader::parse(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidLength);
        assert_eq!(err.close_code().as_u16(), 1002);
    }

    #[test]
    fn write_frame_masks_the_payload_only() {
        let mut dst = BytesMut::new();
        write_frame(&mut dst, OpCode::Text, true, 0, b"abcd", Some([1, 1, 1, 1]));
        assert_eq!(
            &dst[..],
            &[
                0x81,
                0x84,
                1,
                1,
                1,
                1,
                b'a' ^ 1,
                b'b' ^ 1,
                b'c' ^ 1,
                b'd' ^ 1
            ]
        );
    }

    #[test]
    fn small_and_large_payloads_are_framed_the_same_way() {
        // Around the stack-assembled size, with and without a mask: the same bytes as
        // writing the header and masking a copy of the payload.
        for len in (0..=SMALL_PAYLOAD + 2).chain([125, 126, 300]) {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            for mask in [None, Some([0x12, 0x34, 0x56, 0x78])] {
                let mut dst = BytesMut::from(&b"before"[..]);
                write_frame(&mut dst, OpCode::Binary, false, 0, &payload, mask);
                let mut expected = BytesMut::from(&b"before"[..]);
                FrameHeader {
                    fin: false,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len as u64,
                }
                .write(&mut expected);
                let mut body = payload.clone();
                if let Some(key) = mask {
                    for (i, byte) in body.iter_mut().enumerate() {
                        *byte ^= key[i % 4];
                    }
                }
                expected.extend_from_slice(&body);
                assert_eq!(dst, expected, "len {len}, mask {mask:?}");
            }
        }
    }
}
