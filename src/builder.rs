//! `ClientBuilder`: URL, headers, subprotocols and [`Config`] → a connected session.

use std::sync::Arc;

use actix::{Addr, Recipient};
use awc::http::header::{HeaderName, HeaderValue, AUTHORIZATION, ORIGIN};
use futures::channel::mpsc;

use crate::actors::session::{ClientSession, Deliver};
use crate::config::Config;
use crate::connect::{self, Handshake, Request};
use crate::error::Error;
use crate::handle::{IncomingStream, Session, SessionHandle};
use crate::messages::Incoming;

/// Configures and opens a client session.
///
/// ```no_run
/// # async fn demo(me: actix::Recipient<actix_ws_session::Incoming>) -> Result<(), actix_ws_session::Error> {
/// use actix_ws_session::{ClientSession, Config, Send};
///
/// let connection = ClientSession::builder("ws://127.0.0.1:8080/ws")
///     .header("x-client", "demo")
///     .protocol("chat.v1")
///     .config(Config::default().ping_interval(None))
///     .connect(me)
///     .await?;
/// connection.session.send(Send::text("hello")).await??;
/// # Ok(()) }
/// ```
///
/// `connect` and `connect_stream` must run inside an actix `System` (e.g. under
/// `#[actix::main]` or `#[actix_web::main]`); the session's actors start on the current
/// arbiter.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    protocols: Vec<String>,
    config: Config,
    /// The first invalid header, reported by `connect`.
    invalid: Option<Error>,
}

/// A connected session driven by an actor (or any `Recipient<Incoming>`).
#[derive(Debug, Clone)]
pub struct Connection {
    /// The session's address: send it [`Send`](crate::Send), [`Close`](crate::Close),
    /// [`SetMasking`](crate::SetMasking).
    pub session: Addr<ClientSession>,
    /// The opening handshake.
    pub handshake: Arc<Handshake>,
}

impl ClientBuilder {
    /// A builder for `url` (`ws://host[:port]/path`) with the default [`Config`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: Vec::new(),
            protocols: Vec::new(),
            config: Config::default(),
            invalid: None,
        }
    }

    /// Adds a request header. An invalid name or value makes `connect` fail with
    /// [`Error::InvalidHeader`].
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => self.headers.push((name, value)),
            _ => {
                self.invalid
                    .get_or_insert(Error::InvalidHeader(format!("{name:?}")));
            }
        }
        self
    }

    /// Sets `Authorization: Bearer <token>` (recorded as `<redacted>` in the handshake).
    pub fn bearer_auth(self, token: &str) -> Self {
        self.header(AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }

    /// Sets the `Origin` header.
    pub fn origin(self, origin: &str) -> Self {
        self.header(ORIGIN.as_str(), origin)
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`), in order of preference. A server
    /// choosing one that was not offered fails the handshake with
    /// [`Error::UnexpectedProtocol`].
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }

    /// Replaces the [`Config`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Opens the connection and starts a session delivering to `recipient`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], [`Error::InvalidHeader`], [`Error::InvalidUrl`],
    /// [`Error::Connect`], [`Error::HandshakeTimeout`], [`Error::Rejected`] (non-101 answer,
    /// with status, headers and the start of the body), [`Error::Handshake`],
    /// [`Error::UnexpectedProtocol`], [`Error::UnexpectedExtension`].
    pub async fn connect(self, recipient: Recipient<Incoming>) -> Result<Connection, Error> {
        let config = self.config.clone();
        let upgraded = connect::open(&self.into_request()?).await?;
        let session = ClientSession::start(upgraded, &config, Deliver::Recipient(recipient));
        let handshake = session.send(crate::messages::GetHandshake).await?;
        Ok(Connection { session, handshake })
    }

    /// Opens the connection and returns a [`Session`]: a cloneable handle plus a stream of
    /// [`Incoming`], for code that is not an actor.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`].
    pub async fn connect_stream(self) -> Result<Session, Error> {
        let config = self.config.clone();
        let upgraded = connect::open(&self.into_request()?).await?;
        let (events, incoming) = mpsc::unbounded();
        let session = ClientSession::start(upgraded, &config, Deliver::Channel(events));
        let handshake = session.send(crate::messages::GetHandshake).await?;
        Ok(Session {
            handle: SessionHandle::new(session),
            incoming: IncomingStream::new(incoming),
            handshake,
        })
    }

    fn into_request(self) -> Result<Request, Error> {
        self.config.validate()?;
        if let Some(error) = self.invalid {
            return Err(error);
        }
        Ok(Request {
            url: self.url,
            headers: self.headers,
            protocols: self.protocols,
            timeout: self.config.handshake_timeout,
            compression: self.config.compression,
        })
    }
}
