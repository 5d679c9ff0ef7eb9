//! A TCP connector for awc whose stream keeps a copy of the first bytes it reads.
//!
//! awc drops the response of a refused upgrade (anything but 101) after reading its status.
//! The tap lets the handshake report what the server said instead: the recorded bytes are
//! the response head and whatever part of the body arrived with it. Recording stops when
//! the handshake ends, so an open connection pays one flag check per read.

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

/// A TCP stream that copies what it reads into a [`Tap`] while the tap records.
pub(crate) struct TappedStream {
    inner: TcpStream,
    tap: Tap,
}

impl fmt::Debug for TappedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TappedStream")
            .field("inner", &self.inner)
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
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
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
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl ActixStream for TappedStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_read_ready(&self.inner, cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(&self.inner, cx)
    }
}

/// awc's TCP connector service, wrapping each stream in a [`TappedStream`].
#[derive(Clone)]
pub(crate) struct TapConnector {
    tap: Tap,
    tcp: ConnectorService,
}

impl TapConnector {
    pub(crate) fn new(tap: Tap) -> Self {
        Self {
            tap,
            tcp: ConnectorService::default(),
        }
    }
}

impl Service<ConnectInfo<Uri>> for TapConnector {
    type Response = Connection<Uri, TappedStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, info: ConnectInfo<Uri>) -> Self::Future {
        let connecting = self.tcp.call(info);
        let tap = self.tap.clone();
        Box::pin(async move {
            let connection = connecting.await?;
            let _ = connection.io_ref().set_nodelay(true);
            let (inner, connection) = connection.replace_io(());
            let (_, connection) = connection.replace_io(TappedStream { inner, tap });
            Ok(connection)
        })
    }
}
