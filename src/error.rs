//! The one public error type.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::proto::{CloseCode, InvalidClose, ProtocolError};

/// Everything that can go wrong with a session: connecting, sending, or the peer.
///
/// Errors carry their context as data (a status, a size, the protocol rule broken), not as
/// text to parse. [`Error::close_code`] tells which close code, if any, the error put on
/// (or, for 1006, reported about) the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be used (parse error, unsupported scheme, missing host).
    InvalidUrl(String),
    /// A configured header name or value is not valid HTTP.
    InvalidHeader(String),
    /// A [`Config`](crate::Config) setting is unusable; the text names it.
    InvalidConfig(&'static str),
    /// The TCP connection (to the server, or to the proxy) could not be established, or the
    /// proxy's answer to `CONNECT` was not valid HTTP. TLS failures are [`Error::Tls`].
    Connect(String),
    /// TLS failed: the server's certificate is not trusted or not valid for the URL's host,
    /// the TLS handshake broke down, or the TLS configuration is unusable (for example a
    /// CA file that holds no certificate). The text says which.
    Tls(String),
    /// The HTTP proxy answered `CONNECT` with a status other than 2xx (407: proxy
    /// authentication required or refused).
    Proxy {
        /// The proxy's HTTP status.
        status: u16,
        /// The proxy's reason phrase.
        reason: String,
    },
    /// The opening handshake did not finish within `handshake_timeout`.
    HandshakeTimeout(Duration),
    /// The server answered the upgrade request with something other than 101.
    Rejected(Box<Rejection>),
    /// The server's 101 answer is not a valid WebSocket upgrade (for example a wrong
    /// `Sec-WebSocket-Accept`, or a missing `Upgrade` header).
    Handshake(String),
    /// The server chose a subprotocol the client did not offer.
    UnexpectedProtocol(String),
    /// The server chose an extension the client did not offer.
    UnexpectedExtension(String),
    /// The peer broke RFC 6455 (or a configured limit); the connection was failed with
    /// [`ProtocolError::close_code`].
    Protocol(ProtocolError),
    /// A `Close` asked for a code that may not be sent, or a reason over 123 bytes.
    InvalidClose(InvalidClose),
    /// A Ping or Pong payload over 125 bytes (its length given).
    ControlFrameTooLong(usize),
    /// A message larger than the outbound queue bound can never be queued.
    MessageTooLarge {
        /// The message's payload length.
        size: usize,
        /// [`Config::max_queued_bytes`](crate::Config::max_queued_bytes).
        max: usize,
    },
    /// The outbound queue and its waiting room are both full (only reachable by sending
    /// without awaiting, e.g. with `do_send`).
    QueueFull {
        /// Bytes already waiting.
        queued: usize,
        /// The bound.
        max: usize,
    },
    /// The session is closing or closed: nothing more can be sent.
    Closed,
    /// The socket failed or ended before the message could be written (the text is the
    /// I/O error). The connection is reported closed with 1006.
    ConnectionLost(String),
    /// No Pong matched the pinger's Ping within `ping_timeout`; the connection was failed
    /// with 1011.
    PingTimeout(Duration),
    /// The peer did not complete the close handshake within `close_timeout`; the socket
    /// was dropped and 1006 reported.
    CloseTimeout(Duration),
}

/// A non-101 answer to the upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers, in order (values lossily decoded as UTF-8).
    pub headers: Vec<(String, String)>,
    /// The start of the response body (at most 1 KiB): what arrived with the head.
    pub body: Bytes,
}

impl Error {
    /// The close code this error put on the connection: the protocol error's code, 1011
    /// for a ping timeout, 1006 for a lost connection or close timeout; `None` for errors
    /// that did not end a connection (for example a refused `Send`).
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Self::Protocol(error) => Some(error.close_code()),
            Self::PingTimeout(_) => Some(CloseCode::INTERNAL_ERROR),
            Self::ConnectionLost(_) | Self::CloseTimeout(_) => Some(CloseCode::ABNORMAL),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            Self::InvalidHeader(why) => write!(f, "invalid header: {why}"),
            Self::InvalidConfig(why) => write!(f, "invalid config: {why}"),
            Self::Connect(why) => write!(f, "cannot connect: {why}"),
            Self::Tls(why) => write!(f, "TLS: {why}"),
            Self::Proxy { status, reason } => {
                write!(f, "proxy refused the tunnel with status {status} {reason}")
            }
            Self::HandshakeTimeout(limit) => write!(f, "handshake took longer than {limit:?}"),
            Self::Rejected(rejection) => write!(
                f,
                "server refused the upgrade with status {} ({} body bytes)",
                rejection.status,
                rejection.body.len()
            ),
            Self::Handshake(why) => write!(f, "invalid upgrade response: {why}"),
            Self::UnexpectedProtocol(name) => {
                write!(
                    f,
                    "server chose subprotocol {name:?}, which was not offered"
                )
            }
            Self::UnexpectedExtension(name) => {
                write!(f, "server chose extension {name:?}, which was not offered")
            }
            Self::Protocol(error) => {
                write!(f, "protocol error ({}): {error}", error.close_code())
            }
            Self::InvalidClose(error) => write!(f, "invalid close: {error}"),
            Self::ControlFrameTooLong(len) => {
                write!(f, "control frame payload of {len} bytes (max 125)")
            }
            Self::MessageTooLarge { size, max } => {
                write!(
                    f,
                    "message of {size} bytes exceeds the queue bound of {max}"
                )
            }
            Self::QueueFull { queued, max } => {
                write!(
                    f,
                    "outbound queue full ({queued} bytes waiting, bound {max})"
                )
            }
            Self::Closed => f.write_str("session is closed"),
            Self::ConnectionLost(why) => write!(f, "connection lost: {why}"),
            Self::PingTimeout(limit) => write!(f, "no pong within {limit:?}"),
            Self::CloseTimeout(limit) => {
                write!(f, "peer did not finish closing within {limit:?}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Protocol(error) => Some(error),
            Self::InvalidClose(error) => Some(error),
            _ => None,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(error: ProtocolError) -> Self {
        Self::Protocol(error)
    }
}

impl From<InvalidClose> for Error {
    fn from(error: InvalidClose) -> Self {
        Self::InvalidClose(error)
    }
}

impl From<actix::MailboxError> for Error {
    /// A session whose mailbox is gone has stopped: it is closed.
    fn from(_: actix::MailboxError) -> Self {
        Self::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_follow_the_cause() {
        let protocol = Error::Protocol(ProtocolError::InvalidUtf8 { offset: 0 });
        assert_eq!(protocol.close_code(), Some(CloseCode::INVALID_PAYLOAD));
        let ping = Error::PingTimeout(Duration::from_secs(1));
        assert_eq!(ping.close_code(), Some(CloseCode::INTERNAL_ERROR));
        let lost = Error::ConnectionLost("reset".into());
        assert_eq!(lost.close_code(), Some(CloseCode::ABNORMAL));
        assert_eq!(Error::Closed.close_code(), None);
    }

    #[test]
    fn error_stays_small() {
        assert!(
            std::mem::size_of::<Error>() <= 40,
            "{}",
            std::mem::size_of::<Error>()
        );
    }
}
