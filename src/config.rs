//! Every knob of a session, with its default.

use std::time::Duration;

use crate::error::Error;
use crate::proto::DeflateConfig;

/// How a session behaves: liveness, limits, masking and queueing.
///
/// Names follow Ktor's `WebSockets` plugin where it has one (`ping_interval`, `timeout` →
/// [`Config::ping_timeout`], `max_frame_size`, `masking`). Build one with
/// `Config::default()` and the consuming setters:
///
/// ```
/// use std::time::Duration;
/// use actix_ws_session::Config;
///
/// let config = Config::default()
///     .ping_interval(Some(Duration::from_secs(5)))
///     .max_message_size(1 << 20);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// How often the pinger sends a Ping. `None` disables the pinger.
    /// Default: 20 s.
    pub ping_interval: Option<Duration>,
    /// How long the pinger waits for the Pong matching its Ping before it fails the
    /// connection with code 1011, reason "ping timeout". Default: 20 s.
    pub ping_timeout: Duration,
    /// How long a closing session waits for the peer's Close frame and then for the
    /// socket to end, before it drops the socket. Without the peer's Close by then, the
    /// session reports 1006 and [`Error::CloseTimeout`]; with it, the close counts as clean
    /// even though the peer kept the socket open. Default: 10 s.
    pub close_timeout: Duration,
    /// Limit for the whole opening handshake (TCP connect, proxy CONNECT, TLS, HTTP
    /// upgrade).
    /// Default: 10 s.
    pub handshake_timeout: Duration,
    /// Largest frame payload accepted from the peer; a larger frame fails the connection
    /// with 1009 as soon as its header arrives. Default: 16 MiB.
    pub max_frame_size: usize,
    /// Largest message accepted from the peer (all fragments together); a larger one fails
    /// the connection with 1009. Default: 64 MiB.
    pub max_message_size: usize,
    /// Whether outgoing frames are masked (RFC 6455 requires it of clients). Can be changed
    /// on a live session with [`SetMasking`](crate::SetMasking). Default: `true`.
    pub masking: bool,
    /// Bound, in payload bytes, of the outbound queue (sent but not yet written to the
    /// socket). A `Send` that does not fit waits; one larger than the bound is refused with
    /// [`Error::MessageTooLarge`]. Default: 16 MiB.
    pub max_queued_bytes: usize,
    /// Bound, in payload bytes, of what an [`IncomingStream`](crate::IncomingStream) has
    /// received and its consumer not yet taken. Above it the session stops reading from the
    /// socket (TCP then slows the peer) until the consumer has taken the backlog below half
    /// the bound; a single larger message still gets through. Applies to
    /// `connect_stream`; an actor `Recipient` has an unbounded mailbox. Default: 16 MiB.
    pub max_incoming_bytes: usize,
    /// Outgoing messages longer than this are sent as fragments of this many bytes, so
    /// control frames (pongs, pings) can go out between them. `0` never fragments.
    /// Default: 1 MiB: smaller messages go out as one frame, which is what receivers
    /// handle fastest (most reassemble fragments by copying them), while a pong waits
    /// behind at most one write batch of a large message (256 KiB plus one fragment).
    /// Servers with a small frame limit need a smaller value: actix-web's default limit
    /// is 64 KiB per frame.
    pub fragment_size: usize,
    /// Offer permessage-deflate (RFC 7692) with these parameters; `None` offers no
    /// compression. Each compressed connection holds a compressor and an inflater (a few
    /// hundred KiB with the default 15-bit windows), so it is off unless asked for.
    /// Default: `None`.
    pub compression: Option<DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            masking: true,
            max_queued_bytes: 16 << 20,
            max_incoming_bytes: 16 << 20,
            fragment_size: 1 << 20,
            compression: None,
        }
    }
}

impl Config {
    /// Sets [`Config::ping_interval`].
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets [`Config::ping_timeout`].
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// Sets [`Config::close_timeout`].
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`Config::handshake_timeout`].
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`Config::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`Config::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Config::masking`].
    pub fn masking(mut self, masking: bool) -> Self {
        self.masking = masking;
        self
    }

    /// Sets [`Config::max_queued_bytes`].
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Sets [`Config::max_incoming_bytes`].
    pub fn max_incoming_bytes(mut self, bytes: usize) -> Self {
        self.max_incoming_bytes = bytes;
        self
    }

    /// Sets [`Config::fragment_size`].
    pub fn fragment_size(mut self, bytes: usize) -> Self {
        self.fragment_size = bytes;
        self
    }

    /// Sets [`Config::compression`].
    pub fn compression(mut self, compression: Option<DeflateConfig>) -> Self {
        self.compression = compression;
        self
    }

    /// Checks that the settings make sense together.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting when a timeout or interval is zero, or a
    /// size limit is zero.
    pub fn validate(&self) -> Result<(), Error> {
        let zero = Duration::ZERO;
        let checks = [
            (
                self.ping_interval == Some(zero),
                "ping_interval must not be zero",
            ),
            (self.ping_timeout == zero, "ping_timeout must not be zero"),
            (self.close_timeout == zero, "close_timeout must not be zero"),
            (
                self.handshake_timeout == zero,
                "handshake_timeout must not be zero",
            ),
            (self.max_frame_size == 0, "max_frame_size must not be zero"),
            (
                self.max_message_size == 0,
                "max_message_size must not be zero",
            ),
            (
                self.max_queued_bytes == 0,
                "max_queued_bytes must not be zero",
            ),
        ];
        match checks.iter().find(|(bad, _)| *bad) {
            Some((_, why)) => Err(Error::InvalidConfig(why)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.ping_interval, Some(Duration::from_secs(20)));
        assert_eq!(c.ping_timeout, Duration::from_secs(20));
        assert_eq!(c.close_timeout, Duration::from_secs(10));
        assert_eq!(c.handshake_timeout, Duration::from_secs(10));
        assert_eq!(c.max_frame_size, 16 * 1024 * 1024);
        assert_eq!(c.max_message_size, 64 * 1024 * 1024);
        assert!(c.masking);
        assert_eq!(c.max_queued_bytes, 16 * 1024 * 1024);
        assert_eq!(c.max_incoming_bytes, 16 * 1024 * 1024);
        assert_eq!(c.fragment_size, 1 << 20);
        assert_eq!(c.compression, None);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn zero_values_are_refused_by_name() {
        let err = Config::default().ping_timeout(Duration::ZERO).validate();
        assert_eq!(
            err,
            Err(Error::InvalidConfig("ping_timeout must not be zero"))
        );
        let err = Config::default().max_queued_bytes(0).validate();
        assert_eq!(
            err,
            Err(Error::InvalidConfig("max_queued_bytes must not be zero"))
        );
        assert!(Config::default().ping_interval(None).validate().is_ok());
    }
}
