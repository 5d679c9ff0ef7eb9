//! The one error type of the wire format: what the peer did wrong, and the close code it maps to.

use std::fmt;

use super::close::CloseCode;
use super::opcode::OpCode;

/// A violation of RFC 6455 (or of a configured limit) found in bytes received from the peer.
///
/// Every variant fails the connection; [`ProtocolError::close_code`] is the code the client
/// sends in its Close frame before shutting the socket (RFC 6455 §7.1.7, §7.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame used a reserved opcode (`0x3`–`0x7`, `0xB`–`0xF`). Code 1002.
    ReservedOpcode(u8),
    /// A frame set RSV bits that no negotiated extension defines (the bits as a 3-bit
    /// number, RSV1 being 4). Code 1002.
    ReservedBits(u8),
    /// The server masked a frame; servers must not (RFC 6455 §5.1). Code 1002.
    MaskedFrame,
    /// The most significant bit of a 64-bit payload length was set (§5.2). Code 1002.
    InvalidLength,
    /// A control frame declared a payload over 125 bytes (§5.5). Code 1002.
    ControlFrameTooLong(u64),
    /// A control frame arrived without FIN (§5.5). Code 1002.
    FragmentedControlFrame(OpCode),
    /// A continuation frame arrived while no fragmented message was open (§5.4). Code 1002.
    UnexpectedContinuation,
    /// A new Text or Binary frame arrived inside a fragmented message (§5.4). Code 1002.
    ExpectedContinuation(OpCode),
    /// A frame declared a payload over the configured `max_frame_size`. Code 1009.
    FrameTooLarge {
        /// Declared payload length.
        size: u64,
        /// The configured limit.
        max: usize,
    },
    /// A message grew over the configured `max_message_size`. Code 1009.
    MessageTooLarge {
        /// Length the message would have reached.
        size: u64,
        /// The configured limit.
        max: usize,
    },
    /// A text message was not valid UTF-8 (§8.1). Code 1007.
    InvalidUtf8 {
        /// Offset of the first byte that cannot start or continue a code point, within the
        /// message (or the end of the message when it stops inside a code point).
        offset: u64,
    },
    /// A Close frame had a 1-byte payload (§5.5.1). Code 1002.
    CloseFrameTooShort,
    /// A Close frame carried a code that may not appear on the wire (§7.4). Code 1002.
    InvalidCloseCode(u16),
    /// A Close frame's reason was not valid UTF-8 (§5.5.1). Code 1007.
    InvalidCloseReason,
    /// A compressed message could not be inflated (permessage-deflate, RFC 7692). Code 1007.
    Decompression(String),
}

impl ProtocolError {
    /// The close code RFC 6455 prescribes for failing the connection on this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::TOO_BIG,
            Self::InvalidUtf8 { .. } | Self::InvalidCloseReason | Self::Decompression(_) => {
                CloseCode::INVALID_PAYLOAD
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::ReservedBits(bits) => write!(f, "reserved bits {bits:#05b} set"),
            Self::MaskedFrame => f.write_str("masked frame from server"),
            Self::InvalidLength => f.write_str("64-bit payload length with its top bit set"),
            Self::ControlFrameTooLong(len) => {
                write!(f, "control frame payload of {len} bytes (max 125)")
            }
            Self::FragmentedControlFrame(op) => write!(f, "fragmented {op} frame"),
            Self::UnexpectedContinuation => {
                f.write_str("continuation frame without a message to continue")
            }
            Self::ExpectedContinuation(op) => {
                write!(f, "{op} frame inside a fragmented message")
            }
            Self::FrameTooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds max_frame_size {max}")
            }
            Self::MessageTooLarge { size, max } => {
                write!(f, "message of {size} bytes exceeds max_message_size {max}")
            }
            Self::InvalidUtf8 { offset } => write!(f, "invalid UTF-8 at byte {offset}"),
            Self::CloseFrameTooShort => f.write_str("close frame with a 1-byte payload"),
            Self::InvalidCloseCode(code) => write!(f, "close code {code} is not allowed"),
            Self::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            Self::Decompression(why) => write!(f, "cannot inflate message: {why}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_the_rfc_close_code() {
        let cases = [
            (ProtocolError::ReservedOpcode(3), 1002),
            (ProtocolError::ReservedBits(4), 1002),
            (ProtocolError::MaskedFrame, 1002),
            (ProtocolError::InvalidLength, 1002),
            (ProtocolError::ControlFrameTooLong(126), 1002),
            (ProtocolError::FragmentedControlFrame(OpCode::Ping), 1002),
            (ProtocolError::UnexpectedContinuation, 1002),
            (ProtocolError::ExpectedContinuation(OpCode::Text), 1002),
            (ProtocolError::FrameTooLarge { size: 2, max: 1 }, 1009),
            (ProtocolError::MessageTooLarge { size: 2, max: 1 }, 1009),
            (ProtocolError::InvalidUtf8 { offset: 0 }, 1007),
            (ProtocolError::CloseFrameTooShort, 1002),
            (ProtocolError::InvalidCloseCode(1005), 1002),
            (ProtocolError::InvalidCloseReason, 1007),
            (ProtocolError::Decompression("bad".into()), 1007),
        ];
        for (error, code) in cases {
            assert_eq!(error.close_code().as_u16(), code, "{error}");
            assert!(!error.to_string().is_empty());
        }
    }
}
