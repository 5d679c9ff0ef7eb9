//! For callers that are not actors: a cloneable handle, a stream of events, and `run`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::Addr;
use bytes::Bytes;
use bytestring::ByteString;
use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use tokio::sync::oneshot;

use crate::actors::recycle::{self, recyclable};
use crate::actors::session::{Backlog, ClientSession};
use crate::connect::Handshake;
use crate::error::Error;
use crate::messages::{
    Close, CloseInfo, GetHandshake, GetStats, Incoming, Initiator, Send, SessionStats, SetMasking,
};
use crate::proto::CloseCode;

/// A cheap, cloneable way to talk to a session from async code.
///
/// Every method waits for the session's reply: sends resolve once written (or refused),
/// and wait while the outbound queue is full.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    addr: Addr<ClientSession>,
}

impl SessionHandle {
    pub(crate) fn new(addr: Addr<ClientSession>) -> Self {
        Self { addr }
    }

    /// The session actor's address.
    pub fn addr(&self) -> &Addr<ClientSession> {
        &self.addr
    }

    /// Sends any [`Send`] message.
    ///
    /// # Errors
    /// As documented on [`Send`]; [`Error::Closed`] once the session has stopped.
    pub async fn send(&self, message: Send) -> Result<(), Error> {
        self.addr.send(message).await?
    }

    /// Sends a text message.
    ///
    /// # Errors
    /// As [`SessionHandle::send`].
    pub async fn send_text(&self, text: impl Into<ByteString>) -> Result<(), Error> {
        self.send(Send::Text(text.into())).await
    }

    /// Sends a binary message.
    ///
    /// # Errors
    /// As [`SessionHandle::send`].
    pub async fn send_binary(&self, bytes: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Send::Binary(bytes.into())).await
    }

    /// Sends a Ping (at most 125 bytes); its Pong arrives as [`Incoming::Pong`].
    ///
    /// # Errors
    /// As [`SessionHandle::send`].
    pub async fn ping(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Send::Ping(payload.into())).await
    }

    /// Starts the close handshake with `code` and `reason`; resolves once the Close frame
    /// is written. The end arrives as [`Incoming::Closed`].
    ///
    /// # Errors
    /// [`Error::InvalidClose`] for a code that may not be sent or a reason over 123 bytes;
    /// [`Error::Closed`] if a close already began.
    pub async fn close(&self, code: impl Into<CloseCode>, reason: &str) -> Result<(), Error> {
        self.addr.send(Close::new(code, reason)).await?
    }

    /// Turns masking of frames queued from now on on or off (see [`SetMasking`]).
    ///
    /// # Errors
    /// [`Error::Closed`] once a close began.
    pub async fn set_masking(&self, masking: bool) -> Result<(), Error> {
        self.addr.send(SetMasking(masking)).await?
    }

    /// The opening handshake.
    ///
    /// # Errors
    /// [`Error::Closed`] once the session has stopped.
    pub async fn handshake(&self) -> Result<Arc<Handshake>, Error> {
        Ok(self.addr.send(GetHandshake).await?)
    }

    /// The session's state and counters.
    ///
    /// # Errors
    /// [`Error::Closed`] once the session has stopped.
    pub async fn stats(&self) -> Result<SessionStats, Error> {
        Ok(self.addr.send(GetStats).await?)
    }
}

// A batch's vector is taken from the session thread's shelf and given back by the stream
// once drained (to the shelf of the thread that polls it).
recyclable!(Incoming);

/// What the session puts into the channel behind an [`IncomingStream`].
#[derive(Debug)]
pub(crate) enum StreamEvent {
    /// Events for the user, in order.
    Batch(Vec<Incoming>),
    /// Reached when the consumer asks for the event after everything before it.
    Barrier(oneshot::Sender<()>),
}

/// The events of a session, in order; ends after [`Incoming::Closed`].
#[derive(Debug)]
pub struct IncomingStream {
    events: mpsc::UnboundedReceiver<StreamEvent>,
    /// Bytes delivered and not yet taken; what is taken here lets the reader go on.
    backlog: Arc<Backlog>,
    /// The rest of the batch being handed out.
    ready: VecDeque<Incoming>,
    done: bool,
}

impl IncomingStream {
    pub(crate) fn new(events: mpsc::UnboundedReceiver<StreamEvent>, backlog: Arc<Backlog>) -> Self {
        Self {
            events,
            backlog,
            ready: VecDeque::new(),
            done: false,
        }
    }
}

impl Stream for IncomingStream {
    type Item = Incoming;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                if let Incoming::Closed(_) = event {
                    self.done = true;
                }
                self.backlog.taken(Backlog::weight(&event));
                return Poll::Ready(Some(event));
            }
            if self.done {
                return Poll::Ready(None);
            }
            match self.events.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(StreamEvent::Barrier(reached))) => {
                    let _ = reached.send(());
                }
                Poll::Ready(Some(StreamEvent::Batch(events))) => {
                    // `ready` is empty: its allocation goes back to the thread's shelf,
                    // for the session's next batch.
                    let drained = std::mem::replace(&mut self.ready, VecDeque::from(events));
                    recycle::give(Vec::from(drained));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl futures::stream::FusedStream for IncomingStream {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

/// A session for async code: a handle, its events, and the handshake.
#[derive(Debug)]
pub struct Session {
    /// Sends, closes, changes masking.
    pub handle: SessionHandle,
    /// Everything the session receives, ending with [`Incoming::Closed`].
    pub incoming: IncomingStream,
    /// The opening handshake.
    pub handshake: Arc<Handshake>,
}

impl Session {
    /// Runs `handler` on every received message until the session closes (Ktor's `run`),
    /// then returns how it closed.
    ///
    /// The handler gets a handle to answer with; it may await sends freely: the session
    /// never waits for the handler, so this cannot deadlock. Events queue up while the
    /// handler runs.
    pub async fn run<F, Fut>(self, mut handler: F) -> CloseInfo
    where
        F: FnMut(SessionHandle, Incoming) -> Fut,
        Fut: Future<Output = ()>,
    {
        let Session {
            handle,
            mut incoming,
            ..
        } = self;
        while let Some(event) = incoming.next().await {
            match event {
                Incoming::Closed(info) => return info,
                event => handler(handle.clone(), event).await,
            }
        }
        CloseInfo {
            code: CloseCode::ABNORMAL,
            reason: String::new(),
            initiator: Initiator::Local,
            clean: false,
            error: Some(Error::Closed),
            unsent: 0,
        }
    }
}
