//! `ClientBuilder`: URL, headers, subprotocols and [`Config`] → a connected session.

use std::sync::Arc;

use actix::{Addr, ArbiterHandle, Recipient};
use awc::http::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE, ORIGIN};
use base64::Engine as _;
use futures::channel::mpsc;

use crate::actors::session::{Backlog, ClientSession, Deliver};
use crate::config::Config;
#[cfg(feature = "rustls")]
use crate::connect::TlsConfig;
use crate::connect::{self, Handshake, Proxy, ProxySetting, Request};
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
///
/// `wss://` URLs (feature `rustls`, on by default) are verified against the Mozilla roots
/// unless [`ClientBuilder::tls`] says otherwise. No proxy is used unless
/// [`ClientBuilder::proxy`] or [`ClientBuilder::proxy_from_env`] asks for one.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// `name=value` pairs, joined into one `Cookie` header.
    cookies: Vec<String>,
    protocols: Vec<String>,
    config: Config,
    #[cfg(feature = "rustls")]
    tls: Option<TlsConfig>,
    proxy: ProxySetting,
    /// The first invalid header, reported by `connect`.
    invalid: Option<Error>,
    /// Where the session's actors run; `None`: the current arbiter.
    arbiter: Option<ArbiterHandle>,
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
            cookies: Vec::new(),
            protocols: Vec::new(),
            config: Config::default(),
            #[cfg(feature = "rustls")]
            tls: None,
            proxy: ProxySetting::Direct,
            invalid: None,
            arbiter: None,
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

    /// Sets `Authorization: Basic base64(user:password)` (recorded as `<redacted>` in the
    /// handshake); `None` sends `user:` with an empty password, as awc does.
    pub fn basic_auth(self, user: &str, password: Option<&str>) -> Self {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.unwrap_or_default()));
        self.header(AUTHORIZATION.as_str(), &format!("Basic {token}"))
    }

    /// Sets the `Origin` header.
    pub fn origin(self, origin: &str) -> Self {
        self.header(ORIGIN.as_str(), origin)
    }

    /// Adds a cookie: all cookies go out in one `Cookie: a=1; b=2` header (appended to a
    /// `Cookie` header set with [`ClientBuilder::header`], if any), recorded as `<redacted>`
    /// in the handshake. A name that is not an HTTP token, or a value with characters
    /// RFC 6265 does not allow (space, `"`, `,`, `;`, `\`, controls), makes `connect` fail
    /// with [`Error::InvalidHeader`].
    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        if valid_cookie(name, value) {
            self.cookies.push(format!("{name}={value}"));
        } else {
            self.invalid
                .get_or_insert(Error::InvalidHeader(format!("cookie {name:?}")));
        }
        self
    }

    /// How `wss://` servers are verified: extra CAs, native roots, or a whole
    /// `rustls::ClientConfig`. Default: [`TlsConfig::new`] (the Mozilla roots). Feature
    /// `rustls`.
    #[cfg(feature = "rustls")]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Connects through the HTTP proxy `proxy` (a `CONNECT` tunnel, for `ws://` and
    /// `wss://`), unless its bypass list names the URL's host.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = ProxySetting::Fixed(proxy);
        self
    }

    /// Connects through the proxy named by the environment when connecting, as
    /// [`Proxy::from_env`] reads it (`https_proxy`/`HTTPS_PROXY` for `wss://`,
    /// `http_proxy`/`HTTP_PROXY` for `ws://`, then `all_proxy`/`ALL_PROXY`; `no_proxy` /
    /// `NO_PROXY` as the bypass list), or directly when none is set. Without this call the
    /// environment is never read.
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxySetting::FromEnv;
        self
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
    /// [`Error::Connect`], [`Error::Tls`] (untrusted certificate, wrong host name),
    /// [`Error::Proxy`] (the proxy refused the tunnel), [`Error::HandshakeTimeout`] (for the
    /// proxy, TLS and HTTP steps together), [`Error::Rejected`] (non-101 answer,
    /// with status, headers and the start of the body), [`Error::Handshake`],
    /// [`Error::UnexpectedProtocol`], [`Error::UnexpectedExtension`].
    pub async fn connect(self, recipient: Recipient<Incoming>) -> Result<Connection, Error> {
        let (session, handshake) = self.start(Deliver::Recipient(recipient)).await?;
        Ok(Connection { session, handshake })
    }

    /// Opens the connection and returns a [`Session`]: a cloneable handle plus a stream of
    /// [`Incoming`], for code that is not an actor.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`].
    pub async fn connect_stream(self) -> Result<Session, Error> {
        let (events, incoming) = mpsc::unbounded();
        let backlog = Backlog::new(self.config.max_incoming_bytes);
        let max_queued_bytes = self.config.max_queued_bytes;
        let deliver = Deliver::Channel(events, Arc::clone(&backlog));
        let (session, handshake) = self.start(deliver).await?;
        Ok(Session {
            handle: SessionHandle::new(session, max_queued_bytes),
            incoming: IncomingStream::new(incoming, backlog),
            handshake,
        })
    }

    /// Runs the handshake and the session's actors on `arbiter` instead of the current
    /// one. Spreading sessions over several arbiters (one per core) is how a program uses
    /// more than one core: each session, with its children, lives on one thread.
    pub fn arbiter(mut self, arbiter: ArbiterHandle) -> Self {
        self.arbiter = Some(arbiter);
        self
    }

    /// Starts the session where it should run.
    async fn start(
        mut self,
        deliver: Deliver,
    ) -> Result<(Addr<ClientSession>, Arc<Handshake>), Error> {
        let Some(arbiter) = self.arbiter.take() else {
            return self.start_here(deliver).await;
        };
        let (done, result) = futures::channel::oneshot::channel();
        let spawned = arbiter.spawn_fn(move || {
            actix_rt::spawn(async move {
                let _ = done.send(self.start_here(deliver).await);
            });
        });
        if !spawned {
            return Err(Error::Connect("the session's arbiter has stopped".into()));
        }
        result.await.unwrap_or_else(|_| {
            Err(Error::Connect(
                "the session's arbiter stopped during the handshake".into(),
            ))
        })
    }

    /// Handshake, then the session's actors, on the current arbiter.
    async fn start_here(
        self,
        deliver: Deliver,
    ) -> Result<(Addr<ClientSession>, Arc<Handshake>), Error> {
        let config = self.config.clone();
        let upgraded = connect::open(&self.into_request()?).await?;
        let session = ClientSession::start(upgraded, &config, deliver);
        let handshake = session.send(crate::messages::GetHandshake).await?;
        Ok((session, handshake))
    }

    fn into_request(mut self) -> Result<Request, Error> {
        self.config.validate()?;
        if let Some(error) = self.invalid {
            return Err(error);
        }
        if !self.cookies.is_empty() {
            let mut cookies = self.cookies.join("; ");
            if let Some(at) = self.headers.iter().position(|(name, _)| *name == COOKIE) {
                let (_, earlier) = self.headers.remove(at);
                cookies = format!("{}; {cookies}", String::from_utf8_lossy(earlier.as_bytes()));
            }
            let value = HeaderValue::try_from(cookies)
                .map_err(|_| Error::InvalidHeader("Cookie".into()))?;
            self.headers.push((COOKIE, value));
        }
        Ok(Request {
            url: self.url,
            headers: self.headers,
            protocols: self.protocols,
            timeout: self.config.handshake_timeout,
            compression: self.config.compression,
            #[cfg(feature = "rustls")]
            tls: self.tls,
            proxy: self.proxy,
        })
    }
}

/// RFC 6265: the name is a token, the value cookie-octets (optionally in double quotes).
fn valid_cookie(name: &str, value: &str) -> bool {
    let token = |b: u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b);
    let octet = |b: u8| b.is_ascii_graphic() && !b"\",;\\".contains(&b);
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    !name.is_empty() && name.bytes().all(token) && value.bytes().all(octet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(request: &Request, name: &HeaderName) -> Option<String> {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap().to_string())
    }

    #[test]
    fn cookies_join_into_one_header() {
        let request = ClientBuilder::new("ws://h/")
            .header("Cookie", "a=1")
            .cookie("b", "2")
            .cookie("session", "\"x y\"")
            .into_request();
        assert!(matches!(request, Err(Error::InvalidHeader(_))));
        let request = ClientBuilder::new("ws://h/")
            .header("Cookie", "a=1")
            .cookie("b", "2")
            .cookie("c", "\"q\"")
            .into_request()
            .unwrap();
        assert_eq!(
            header(&request, &COOKIE).as_deref(),
            Some("a=1; b=2; c=\"q\"")
        );
        assert_eq!(
            request.headers.iter().filter(|(n, _)| *n == COOKIE).count(),
            1
        );
        for (name, value) in [
            ("", "v"),
            ("a b", "v"),
            ("a=b", "v"),
            ("n", "x;y"),
            ("n", "x,y"),
        ] {
            assert!(
                ClientBuilder::new("ws://h/")
                    .cookie(name, value)
                    .into_request()
                    .is_err(),
                "{name:?}={value:?}"
            );
        }
    }

    #[test]
    fn basic_auth_encodes_user_and_password() {
        let request = ClientBuilder::new("ws://h/")
            .basic_auth("aladdin", Some("open sesame"))
            .into_request()
            .unwrap();
        assert_eq!(
            header(&request, &AUTHORIZATION).as_deref(),
            Some("Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        let request = ClientBuilder::new("ws://h/")
            .basic_auth("u", None)
            .into_request()
            .unwrap();
        assert_eq!(
            header(&request, &AUTHORIZATION).as_deref(),
            Some("Basic dTo=")
        );
    }
}
