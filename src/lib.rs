//! Actor-based WebSocket client sessions for actix.
//!
//! Every connection is a [`ClientSession`] actor. Its mailbox takes [`Send`], [`Close`] and
//! [`SetMasking`]; it delivers [`Incoming`] events to a `Recipient` of yours (or, through
//! [`ClientBuilder::connect_stream`], to a `Stream` for code that is not an actor). Three
//! child actors do the rest: a **codec** actor owns the socket and speaks RFC 6455 through
//! the sans-I/O [`proto`] module, a **pinger** checks liveness, a **ponger** answers the
//! peer's pings. The opening handshake goes through `awc`.
//!
//! # Quickstart
//!
//! ```no_run
//! use actix_ws_session::{ClientSession, Incoming};
//! use futures::StreamExt;
//!
//! #[actix::main]
//! async fn main() -> Result<(), actix_ws_session::Error> {
//!     let mut session = ClientSession::builder("ws://127.0.0.1:8080/ws")
//!         .connect_stream()
//!         .await?;
//!     session.handle.send_text("hello").await?;
//!     if let Some(Incoming::Text(echo)) = session.incoming.next().await {
//!         println!("echo: {echo}");
//!     }
//!     session.handle.close(1000, "bye").await?;
//!     while let Some(event) = session.incoming.next().await {
//!         if let Incoming::Closed(info) = event {
//!             println!("closed with {} (clean: {})", info.code, info.clean);
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Lifecycle
//!
//! `Connecting` (the handshake, inside `connect`) → `Open` → `Closing` → `Closed`. The
//! session runs while its connection is open, whether or not you keep its address. It ends
//! with exactly one [`Incoming::Closed`] carrying a [`CloseInfo`]: the close code and reason,
//! who started it, whether the close handshake completed, and the error if there was one
//! (protocol violations fail the connection with 1002, 1007 or 1009; a missed pong with
//! 1011; a lost connection reports 1006, which is never sent). After that every message is
//! answered with [`Error::Closed`], and the actor stops when its last address is dropped.
//!
//! # Backpressure and delivery
//!
//! A `Send` is answered once its frames are written to the socket, or with an error: nothing
//! is dropped silently. The outbound queue is bounded ([`Config::max_queued_bytes`]); while it
//! is full, `addr.send(Send::..).await` waits. To send many messages, [`SessionHandle::sink`]
//! gives a [`SendSink`] (a `futures::Sink`) that hands them to the session one batch per
//! mailbox message, with the same answers and bound. Inbound, a [`Session`]'s stream is bounded
//! too ([`Config::max_incoming_bytes`]): while its consumer is that far behind, the session
//! stops reading from the socket, and TCP slows the peer down. The session delivers `Incoming` with
//! `do_send` and never waits for your handler, so your handler may await the session (even
//! with `ctx.wait`) without deadlock.
//!
//! # Supervision
//!
//! The session never stops itself: after `Closed` it stays and answers [`Error::Closed`],
//! so wrapping it in an actix `Supervisor` does not cause restart loops.

#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub, missing_debug_implementations)]

mod actors;
mod builder;
mod config;
mod connect;
mod error;
mod handle;
mod messages;
pub mod proto;
pub mod runtime;

pub use actors::session::{ClientSession, SendReply};
pub use builder::{ClientBuilder, Connection};
pub use config::Config;
#[cfg(feature = "rustls")]
pub use connect::TlsConfig;
pub use connect::{Handshake, Proxy};
pub use error::{Error, Rejection};
pub use handle::{
    IncomingStream, SendSink, Session, SessionHandle, SINK_BATCHES_IN_FLIGHT, SINK_BATCH_BYTES,
    SINK_BATCH_MESSAGES,
};
pub use messages::{
    Close, CloseInfo, GetHandshake, GetStats, Incoming, Initiator, Send, SessionState,
    SessionStats, SetMasking,
};
pub use proto::{CloseCode, CloseFrame, DeflateConfig};
/// The rustls version `TlsConfig::custom` takes a `ClientConfig` of (feature `rustls`).
#[cfg(feature = "rustls")]
pub use rustls;
