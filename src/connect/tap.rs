//! The connector awc uses in place of its TCP connector: it opens the whole transport
//! (TCP, then the proxy's `CONNECT` tunnel if any, then TLS for `wss://`) and hands awc a
//! stream that keeps a copy of the first plaintext bytes it reads.
//!
//! awc drops the response of a refused upgrade (anything but 101) after reading its status.
//! The tap lets the handshake report what the server said instead: the recorded bytes are
//! the response head and whatever part of the body arrived with it. The tap sits above TLS,
//! so this works for `wss://` too. Recording stops when the handshake ends, so an open
//! connection pays one flag check per read.
//!
//! awc is always given a `ws://` URL (see [`super::open`]), so it never adds TLS of its own:
//! the stream it gets is already encrypted when the target is `wss://`.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_rt::net::{ActixStream, Ready, TcpStream};
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService};
use awc::http::Uri;
use bytes::BytesMut;
use futures::future::LocalBoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::proxy::Proxy;
use crate::error::Error;

/// Most bytes a tap keeps: a response head plus the first KiB of body, generously.
const TAP_LIMIT: usize = 16 * 1024;

/// Shared record of the bytes read during the handshake.
#[derive(Clone, Default)]
pub(crate) struct Tap(Rc<RefCell<Option<BytesMut>>>);

impl Tap {
    /// A tap that records from the start.
    pub(crate) fn recording() -> Self {
        Self(Rc::new(RefCell::new(Some(BytesMut::new()))))
    }

    fn record(&self, data: &[u8]) {
        if let Some(bytes) = self.0.borrow_mut().as_mut() {
            let room = TAP_LIMIT.saturating_sub(bytes.len());
            bytes.extend_from_slice(&data[..data.len().min(room)]);
        }
    }

    /// Stops recording and returns what was recorded.
    pub(crate) fn take(&self) -> BytesMut {
        self.0.borrow_mut().take().unwrap_or_default()
    }
}

/// The connection under the tap: plain TCP, or TLS over TCP (either possibly through a
/// proxy tunnel, which is plain TCP once open).
pub(crate) enum Transport {
    Plain(TcpStream),
    #[cfg(feature = "rustls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.get_ref().0,
        }
    }
}

/// Forwards an I/O call to whichever transport is inside.
macro_rules! forward {
    ($self:expr, $io:ident => $call:expr) => {
        match &mut $self.inner {
            Transport::Plain($io) => $call,
            #[cfg(feature = "rustls")]
            Transport::Tls($io) => $call,
        }
    };
}

/// A stream that copies what it reads into a [`Tap`] while the tap records.
pub(crate) struct TappedStream {
    inner: Transport,
    tap: Tap,
}

impl fmt::Debug for TappedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = !matches!(self.inner, Transport::Plain(_));
        f.debug_struct("TappedStream")
            .field("tcp", self.inner.tcp())
            .field("tls", &tls)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for TappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = forward!(this, io => Pin::new(io).poll_read(cx, buf));
        if let Poll::Ready(Ok(())) = result {
            this.tap.record(&buf.filled()[before..]);
        }
        result
    }
}

impl AsyncWrite for TappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        forward!(self, io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        forward!(self, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Transport::Plain(io) => io.is_write_vectored(),
            #[cfg(feature = "rustls")]
            Transport::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, io => Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, io => Pin::new(io).poll_shutdown(cx))
    }
}

/// Readiness of the TCP socket underneath (what actix-tls reports for its TLS streams too;
/// awc and this crate do not rely on it).
impl ActixStream for TappedStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_read_ready(self.inner.tcp(), cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(self.inner.tcp(), cx)
    }
}

/// Where and how to connect, whatever URL awc was given.
pub(crate) struct Route {
    /// The target host as written in the URL (an IPv6 literal keeps its brackets).
    pub(crate) host: String,
    /// The target port.
    pub(crate) port: u16,
    /// TLS configuration for `wss://`; `None` for `ws://`.
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The proxy to tunnel through, if any (already checked against its bypass list).
    pub(crate) proxy: Option<Proxy>,
}

/// The typed error behind a failed connect: awc only passes on a `ConnectError`.
pub(crate) type Failure = Rc<RefCell<Option<Error>>>;

/// awc's TCP connector service: opens the [`Route`] and wraps it in a [`TappedStream`].
#[derive(Clone)]
pub(crate) struct TapConnector {
    tap: Tap,
    route: Rc<Route>,
    failure: Failure,
    tcp: ConnectorService,
}

impl TapConnector {
    pub(crate) fn new(tap: Tap, route: Route, failure: Failure) -> Self {
        Self {
            tap,
            route: Rc::new(route),
            failure,
            tcp: ConnectorService::default(),
        }
    }
}

/// TCP to the proxy (and the tunnel through it) or straight to the target.
async fn open_tcp(
    tcp: &ConnectorService,
    route: &Route,
    info: ConnectInfo<Uri>,
) -> Result<TcpStream, Error> {
    let Some(proxy) = &route.proxy else {
        let info = with_ip_literal(info, &route.host, route.port);
        let connection = tcp
            .call(info)
            .await
            .map_err(|e| Error::Connect(format!("{}:{}: {e}", route.host, route.port)))?;
        return Ok(connection.into_parts().0);
    };
    let proxy_uri = proxy.uri()?;
    let info = with_ip_literal(
        ConnectInfo::new(proxy_uri.clone()),
        proxy_uri.host().unwrap_or_default(),
        proxy_uri.port_u16().unwrap_or(80),
    );
    let connection = tcp
        .call(info)
        .await
        .map_err(|e| Error::Connect(format!("proxy {}: {e}", proxy.authority())))?;
    let mut io = connection.into_parts().0;
    proxy.tunnel(&mut io, &route.host, route.port).await?;
    Ok(io)
}

/// actix-tls resolves `[::1]` (an IPv6 literal as a URI writes it) as a name and fails:
/// give it the address instead.
fn with_ip_literal(info: ConnectInfo<Uri>, host: &str, port: u16) -> ConnectInfo<Uri> {
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => info.set_addr(std::net::SocketAddr::new(ip, port)),
        Err(_) => info,
    }
}

async fn open_transport(
    tcp: &ConnectorService,
    route: &Route,
    info: ConnectInfo<Uri>,
) -> Result<Transport, Error> {
    let io = open_tcp(tcp, route, info).await?;
    let _ = io.set_nodelay(true);
    #[cfg(feature = "rustls")]
    if let Some(config) = &route.tls {
        let tls = super::tls::handshake(config.clone(), &route.host, io).await?;
        return Ok(Transport::Tls(Box::new(tls)));
    }
    Ok(Transport::Plain(io))
}

impl Service<ConnectInfo<Uri>> for TapConnector {
    type Response = Connection<Uri, TappedStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, info: ConnectInfo<Uri>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let uri = info.request().clone();
            match open_transport(&this.tcp, &this.route, info).await {
                Ok(inner) => Ok(Connection::new(
                    uri,
                    TappedStream {
                        inner,
                        tap: this.tap,
                    },
                )),
                Err(error) => {
                    let text = error.to_string();
                    *this.failure.borrow_mut() = Some(error);
                    Err(ConnectError::Io(io::Error::other(text)))
                }
            }
        })
    }
}
