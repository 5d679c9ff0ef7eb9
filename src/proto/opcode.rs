//! Frame opcodes (RFC 6455 §5.2).

use std::fmt;

/// The opcode of a frame: what its payload means.
///
/// The reserved opcodes (`0x3`–`0x7`, `0xB`–`0xF`) are not representable: the decoder
/// rejects them with [`ProtocolError::ReservedOpcode`](super::ProtocolError::ReservedOpcode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: the continuation of a fragmented data message.
    Continuation,
    /// `0x1`: a UTF-8 text message (or its first fragment).
    Text,
    /// `0x2`: a binary message (or its first fragment).
    Binary,
    /// `0x8`: a Close control frame.
    Close,
    /// `0x9`: a Ping control frame.
    Ping,
    /// `0xA`: a Pong control frame.
    Pong,
}

impl OpCode {
    /// Maps the 4-bit opcode field to an `OpCode`, or `None` for a reserved value.
    pub fn from_u8(bits: u8) -> Option<Self> {
        match bits {
            0x0 => Some(Self::Continuation),
            0x1 => Some(Self::Text),
            0x2 => Some(Self::Binary),
            0x8 => Some(Self::Close),
            0x9 => Some(Self::Ping),
            0xA => Some(Self::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value of this opcode.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// `true` for Continuation, Text and Binary.
    pub fn is_data_or_continuation(self) -> bool {
        !self.is_control()
    }

    /// `true` for Close, Ping and Pong (opcodes with the high bit set).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Continuation => "continuation",
            Self::Text => "text",
            Self::Binary => "binary",
            Self::Close => "close",
            Self::Ping => "ping",
            Self::Pong => "pong",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_opcode_round_trips_and_reserved_ones_are_rejected() {
        for bits in 0u8..16 {
            match OpCode::from_u8(bits) {
                Some(op) => {
                    assert_eq!(op.as_u8(), bits);
                    assert_eq!(op.is_control(), bits >= 8);
                }
                None => assert!(matches!(bits, 0x3..=0x7 | 0xB..=0xF), "{bits:#x}"),
            }
        }
    }
}
