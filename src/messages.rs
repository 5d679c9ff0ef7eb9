//! Every message the session's actors exchange, written as a protocol spec.
//!
//! Each type says who sends it, who handles it, and what the reply is. The first part is
//! public (what users send and receive); the second is internal to the session's actors.

use std::sync::Arc;
use std::time::Duration;

use actix::Message;
use bytes::Bytes;
use bytestring::ByteString;

use crate::connect::Handshake;
use crate::error::Error;
use crate::proto::{CloseCode, CloseFrame};

// ---------------------------------------------------------------------------------------
// Public: user → session
// ---------------------------------------------------------------------------------------

/// Send a message. **Sender:** the user. **Handler:** [`ClientSession`](crate::ClientSession).
///
/// **Reply:** `Ok(())` once the frame(s) have been written to the socket; otherwise an
/// [`Error`]: [`Error::Closed`] after a close began, [`Error::MessageTooLarge`] for a message
/// over the queue bound, [`Error::ControlFrameTooLong`] for a Ping/Pong over 125 bytes,
/// [`Error::QueueFull`] when even the waiting room is full, [`Error::ConnectionLost`] when
/// the socket failed first. While the outbound queue is over
/// [`Config::max_queued_bytes`](crate::Config::max_queued_bytes) the reply waits, so
/// `addr.send(Send::..).await` applies backpressure. With `do_send` nobody sees the reply;
/// messages that were accepted but never written are counted in [`CloseInfo::unsent`].
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), Error>")]
pub enum Send {
    /// A text message.
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// A Ping (at most 125 bytes). Its Pong arrives as [`Incoming::Pong`].
    Ping(Bytes),
    /// An unsolicited Pong (at most 125 bytes), e.g. as a unidirectional heartbeat.
    Pong(Bytes),
}

impl Send {
    /// A text message.
    pub fn text(text: impl Into<ByteString>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self::Binary(bytes.into())
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(bytes) | Self::Ping(bytes) | Self::Pong(bytes) => bytes.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a data message (Text or Binary): what the outbound bound counts and
    /// a batch's reply waits for, as opposed to a Ping or Pong.
    pub(crate) fn is_data(&self) -> bool {
        matches!(self, Self::Text(_) | Self::Binary(_))
    }
}

/// Start the closing handshake. **Sender:** the user. **Handler:** `ClientSession`.
///
/// Everything sent before it is written first, then the Close frame; the session then waits
/// up to `close_timeout` for the peer's Close and the end of the socket, and reports
/// [`Incoming::Closed`].
///
/// **Reply:** `Ok(())` once the Close frame is written; [`Error::Closed`] if a close already
/// began; [`Error::InvalidClose`] for a code that may not be sent or a reason over 123 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Close {
    /// The code to send; `None` sends a Close frame without a status (the peer sees 1005).
    pub code: Option<CloseCode>,
    /// The reason, at most 123 bytes of UTF-8 (ignored without a code).
    pub reason: String,
}

impl Close {
    /// Close with 1000 (normal) and no reason.
    pub fn normal() -> Self {
        Self::new(CloseCode::NORMAL, "")
    }

    /// Close with `code` and `reason`.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<String>) -> Self {
        Self {
            code: Some(code.into()),
            reason: reason.into(),
        }
    }

    /// The Close frame to send, checked.
    pub(crate) fn to_frame(&self) -> Result<Option<CloseFrame>, Error> {
        match self.code {
            None => Ok(None),
            Some(code) => Ok(Some(CloseFrame::new(code, self.reason.as_str())?)),
        }
    }
}

/// Turn masking of outgoing frames on or off. **Sender:** the user. **Handler:**
/// `ClientSession`, which sets it in the link it shares with its codec actor.
///
/// As with Ktor's `masking` property, the change applies to frames queued after the session
/// handles this message (its own, and the pinger's and ponger's once the codec takes
/// them); frames already queued keep the masking they were queued with. RFC 6455 requires
/// clients to mask: turn it off only for a trusted peer.
///
/// **Reply:** `Ok(())`, or [`Error::Closed`] once a close began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct SetMasking(pub bool);

/// Ask for the opening handshake. **Sender:** the user. **Handler:** `ClientSession`.
/// **Reply:** the [`Handshake`] (also returned by `connect`), available even when closed.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Arc<Handshake>")]
pub struct GetHandshake;

/// Ask for the session's state and counters. **Sender:** the user. **Handler:**
/// `ClientSession`. **Reply:** [`SessionStats`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "SessionStats")]
pub struct GetStats;

/// Where a session is in its life (`Connecting` is the handshake, before the actor exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Messages flow both ways.
    Open,
    /// A Close frame was sent or received; the session is finishing.
    Closing,
    /// The socket is gone and [`Incoming::Closed`] was delivered.
    Closed,
}

/// A snapshot of a session, the reply to [`GetStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    /// The lifecycle state.
    pub state: SessionState,
    /// Round-trip time of the pinger's last answered Ping, if any.
    pub last_rtt: Option<Duration>,
    /// Payload bytes accepted and not yet written.
    pub queued_bytes: usize,
}

// ---------------------------------------------------------------------------------------
// Public: session → user
// ---------------------------------------------------------------------------------------

/// What the session delivers to the user's `Recipient<Incoming>` (or stream).
///
/// **Sender:** `ClientSession`, with `do_send`: it never waits for the recipient. So a
/// handler of `Incoming` may freely `send(..).await` to the session (or block its own actor
/// on it with `ctx.wait`): the session keeps running and answers. Messages arrive in wire
/// order; exactly one `Closed` is the last event of every session.
///
/// Payloads are not copied out of the connection's read buffer: a message is a view of
/// it, so while any message of a read is kept, that read's buffer stays allocated: 8 KiB
/// for a read of less than that after a pause, up to 256 KiB while small messages stream
/// in (reads fill buffers of 8 KiB growing to 256 KiB), and the message's own size rounded
/// up (to a power of two under 64 KiB, to 64 KiB steps above) for a larger one. To keep
/// many small messages for long, copy them (`Bytes::copy_from_slice`) and drop the
/// originals.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum Incoming {
    /// A complete text message (UTF-8 validated).
    Text(ByteString),
    /// A complete binary message.
    Binary(Bytes),
    /// A Ping from the peer (already answered by the ponger).
    Ping(Bytes),
    /// A Pong from the peer.
    Pong(Bytes),
    /// The session ended.
    Closed(CloseInfo),
}

/// Who started the end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This client: a `Close`, a protocol error it detected, or a ping timeout.
    Local,
    /// The server: its Close frame, or the socket ending.
    Peer,
}

/// How a session ended, delivered once as [`Incoming::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the peer's (1005 if its Close had none) after a close handshake;
    /// the code this client failed the connection with after an error; 1006 when the
    /// connection was lost without a close handshake.
    pub code: CloseCode,
    /// The reason that came with `code`.
    pub reason: String,
    /// Who started it.
    pub initiator: Initiator,
    /// Whether Close frames were exchanged both ways before the socket ended.
    pub clean: bool,
    /// What went wrong, when something did.
    pub error: Option<Error>,
    /// Messages accepted by `Send` that were never written (their senders, if waiting, got
    /// an error).
    pub unsent: usize,
}

// ---------------------------------------------------------------------------------------
// Internal: user's sink → session
// ---------------------------------------------------------------------------------------

/// The messages a [`SendSink`](crate::SendSink) gathered, in order, as one mailbox message.
/// **Sender:** `SendSink`. **Handler:** `ClientSession`. **Reply:** none; `done` is resolved
/// as a [`Send`]'s reply would be, for the whole batch: `Ok(())` once every message is
/// written, or the error. The batch is queued whole or refused whole.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct SendBatch {
    pub(crate) messages: Vec<Send>,
    pub(crate) done: Option<Reply>,
}

// ---------------------------------------------------------------------------------------
// Internal: session ↔ codec actor
// ---------------------------------------------------------------------------------------

/// The reply channel of a `Send`/`Close`, resolved when its frames are written.
pub(crate) type Reply = actix::dev::OneshotSender<Result<(), Error>>;

/// A frame for the codec actor to write.
#[derive(Debug)]
pub(crate) enum OutFrame {
    /// A text or binary message, fragmented by the codec as configured.
    Data(Send),
    /// A Close frame (`None`: without status). Nothing is written after it.
    Close(Option<CloseFrame>),
    /// Text and Binary messages handed over together (a sink's batch), written in order as
    /// if queued one by one; the reply comes once the last one is written.
    Run {
        /// The messages, each a Text or Binary message.
        messages: Vec<Send>,
        /// Their payload bytes, all together.
        bytes: usize,
    },
}

/// Write a frame. **Sender:** `Pinger` (Ping), `Ponger` (Pong); the session queues its own
/// frames through its `CodecLink` instead. **Handler:** `CodecActor`. **Reply:** none;
/// `reply` is resolved once written.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Write {
    pub(crate) frame: OutFrame,
    pub(crate) reply: Option<Reply>,
}

/// The close handshake is over: write what is queued, shut the write side, then wait for
/// the peer to end the socket. **Sender:** `ClientSession`. **Handler:** `CodecActor`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Finish;

/// Drop the socket now. **Sender:** `ClientSession` (close timeout, lost peer).
/// **Handler:** `CodecActor`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Abort;

/// How reading ended. Reported by the `CodecActor` to its session through their link.
#[derive(Debug)]
pub(crate) enum ReadEnded {
    /// The peer broke the protocol; the codec now discards input until the socket ends.
    Protocol(crate::proto::ProtocolError),
    /// The peer ended the socket.
    Eof,
    /// Reading failed.
    Io(String),
}

/// The codec actor stopped: the socket is gone. Reported by the `CodecActor` (in `stopped`)
/// to its session through their link; the session then reports [`Incoming::Closed`].
#[derive(Debug)]
pub(crate) struct CodecStopped {
    /// Data messages accepted but never written.
    pub(crate) unsent: usize,
    /// The write error that stopped it, if one did.
    pub(crate) write_error: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Internal: session ↔ pinger / ponger
// ---------------------------------------------------------------------------------------

/// The peer sent a Ping. **Sender:** `ClientSession`. **Handler:** `Ponger`, which answers
/// with a Pong of the same payload through the codec actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct PeerPing(pub(crate) Bytes);

/// The peer sent a Pong. **Sender:** `ClientSession`. **Handler:** `Pinger`, which matches
/// it against its outstanding Ping.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct PeerPong(pub(crate) Bytes);

/// The pinger measured a round trip. **Sender:** `Pinger`. **Handler:** `ClientSession`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct RttMeasured(pub(crate) Duration);

/// No Pong matched the last Ping within `ping_timeout`. **Sender:** `Pinger`.
/// **Handler:** `ClientSession`, which fails the connection with 1011.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct LivenessLost(pub(crate) Duration);

/// Stop now. **Sender:** `ClientSession` when it starts closing. **Handler:** `Pinger`,
/// `Ponger`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct StopChild;
