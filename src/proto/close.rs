//! Close frames (RFC 6455 §5.5.1, §7.4): status codes, parsing and building.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::error::ProtocolError;

/// Longest close reason that fits a control frame: 125 bytes minus the 2-byte code.
pub const MAX_CLOSE_REASON: usize = 123;

/// A close status code (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer violated the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: the endpoint received a type of data it cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no code was present in the Close frame. Reported, never sent.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection closed without a Close frame. Reported, never sent.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a message's data did not match its type (for example bad UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message was too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1010: the server did not negotiate an extension the client requires.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the endpoint met an unexpected condition (also used for a missed pong).
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1015: the TLS handshake failed. Reported, never sent.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Wraps any 16-bit code; use [`CloseCode::is_sendable`] to check it may go on the wire.
    pub const fn new(code: u16) -> Self {
        Self(code)
    }

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether this code may appear in a Close frame on the wire: 1000–1003, 1007–1014
    /// (assigned by RFC 6455 and the IANA registry) and 3000–4999 (registered and private
    /// use). Everything else — below 1000, 1004–1006, 1015, unassigned 1016–2999, 5000 and
    /// up — may not.
    pub const fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A user asked to build a Close frame that may not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidClose {
    /// The code may not appear on the wire (see [`CloseCode::is_sendable`]).
    Code(u16),
    /// The reason is longer than [`MAX_CLOSE_REASON`] bytes of UTF-8 (its length given).
    ReasonTooLong(usize),
}

impl fmt::Display for InvalidClose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "close code {code} may not be sent"),
            Self::ReasonTooLong(len) => write!(
                f,
                "close reason of {len} bytes exceeds {MAX_CLOSE_REASON} bytes"
            ),
        }
    }
}

impl std::error::Error for InvalidClose {}

/// The status of a Close frame: code and UTF-8 reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    code: CloseCode,
    reason: ByteString,
}

impl CloseFrame {
    /// A close status to send.
    ///
    /// # Errors
    /// [`InvalidClose::Code`] when `code` may not be sent, [`InvalidClose::ReasonTooLong`]
    /// when `reason` is over 123 bytes.
    pub fn new(
        code: impl Into<CloseCode>,
        reason: impl Into<ByteString>,
    ) -> Result<Self, InvalidClose> {
        let code = code.into();
        let reason = reason.into();
        if !code.is_sendable() {
            return Err(InvalidClose::Code(code.as_u16()));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(InvalidClose::ReasonTooLong(reason.len()));
        }
        Ok(Self { code, reason })
    }

    /// The status code.
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason text (possibly empty).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Parses a received Close payload: empty (no status), or a code and a UTF-8 reason.
    ///
    /// # Errors
    /// [`ProtocolError::CloseFrameTooShort`] for a 1-byte payload,
    /// [`ProtocolError::InvalidCloseCode`] for a code that may not be on the wire,
    /// [`ProtocolError::InvalidCloseReason`] when the reason is not UTF-8.
    pub fn parse(payload: Bytes) -> Result<Option<Self>, ProtocolError> {
        match payload.len() {
            0 => Ok(None),
            1 => Err(ProtocolError::CloseFrameTooShort),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code.as_u16()));
                }
                let reason = ByteString::try_from(payload.slice(2..))
                    .map_err(|_| ProtocolError::InvalidCloseReason)?;
                Ok(Some(Self { code, reason }))
            }
        }
    }

    /// Appends the Close payload (code, then reason) to `dst`.
    pub fn write_payload(&self, dst: &mut BytesMut) {
        dst.reserve(2 + self.reason.len());
        dst.put_u16(self.code.as_u16());
        dst.put_slice(self.reason.as_bytes());
    }

    /// The Close payload as bytes.
    pub fn to_payload(&self) -> Bytes {
        let mut dst = BytesMut::with_capacity(2 + self.reason.len());
        self.write_payload(&mut dst);
        dst.freeze()
    }
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} ({})", self.code, self.reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(code: u16, reason: &[u8]) -> Bytes {
        let mut bytes = code.to_be_bytes().to_vec();
        bytes.extend_from_slice(reason);
        Bytes::from(bytes)
    }

    #[test]
    fn sendable_codes_follow_the_registry() {
        for code in 0..=u16::MAX {
            let expected = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(code).is_sendable(), expected, "{code}");
        }
    }

    #[test]
    fn empty_payload_means_no_status() {
        assert_eq!(CloseFrame::parse(Bytes::new()), Ok(None));
    }

    #[test]
    fn one_byte_payload_is_a_protocol_error() {
        let err = CloseFrame::parse(Bytes::from_static(&[3])).unwrap_err();
        assert_eq!(err, ProtocolError::CloseFrameTooShort);
        assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
    }

    #[test]
    fn codes_that_may_not_be_on_the_wire_are_protocol_errors() {
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let err = CloseFrame::parse(payload(code, b"")).unwrap_err();
            assert_eq!(err, ProtocolError::InvalidCloseCode(code));
            assert_eq!(err.close_code().as_u16(), 1002);
        }
    }

    #[test]
    fn invalid_utf8_reason_is_1007() {
        let err = CloseFrame::parse(payload(1000, &[0xce, 0xba, 0xff])).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidCloseReason);
        assert_eq!(err.close_code().as_u16(), 1007);
    }

    #[test]
    fn valid_close_parses_code_and_reason() {
        let frame = CloseFrame::parse(payload(4000, "κόσμε".as_bytes()))
            .unwrap()
            .unwrap();
        assert_eq!(frame.code().as_u16(), 4000);
        assert_eq!(frame.reason(), "κόσμε");
        assert_eq!(CloseFrame::parse(frame.to_payload()), Ok(Some(frame)));
    }

    #[test]
    fn building_rejects_bad_codes_and_long_reasons() {
        assert_eq!(CloseFrame::new(1005, ""), Err(InvalidClose::Code(1005)));
        assert_eq!(CloseFrame::new(999, ""), Err(InvalidClose::Code(999)));
        let long = "x".repeat(124);
        assert_eq!(
            CloseFrame::new(1000, long),
            Err(InvalidClose::ReasonTooLong(124))
        );
        assert!(CloseFrame::new(1000, "x".repeat(123)).is_ok());
    }
}
