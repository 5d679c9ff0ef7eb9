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
use futures::{Sink, Stream, StreamExt};
use tokio::sync::oneshot;

use crate::actors::recycle::{self, recyclable};
use crate::actors::session::{incoming_of, Backlog, ClientSession};
use crate::connect::Handshake;
use crate::error::Error;
use crate::messages::{
    Close, CloseInfo, GetHandshake, GetStats, Incoming, Initiator, Send, SendBatch, SessionStats,
    SetMasking,
};
use crate::proto::{CloseCode, Message};

/// A cheap, cloneable way to talk to a session from async code.
///
/// Every method waits for the session's reply: sends resolve once written (or refused),
/// and wait while the outbound queue is full.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    addr: Addr<ClientSession>,
    /// The session's [`Config::max_queued_bytes`](crate::Config::max_queued_bytes).
    max_queued_bytes: usize,
}

impl SessionHandle {
    pub(crate) fn new(addr: Addr<ClientSession>, max_queued_bytes: usize) -> Self {
        Self {
            addr,
            max_queued_bytes,
        }
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

    /// A [`Sink`] for sending many messages: it gathers what is fed to it and hands it to
    /// the session as one mailbox message per flush (see [`SendSink`]).
    pub fn sink(&self) -> SendSink {
        SendSink {
            addr: self.addr.clone(),
            budget: self.max_queued_bytes,
            batch_bytes: SINK_BATCH_BYTES.min(self.max_queued_bytes / 2).max(1),
            gathered: Vec::new(),
            gathered_bytes: 0,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            closing: Closing::Not,
        }
    }
}

/// Most messages a [`SendSink`] gathers before it hands them to the session unasked.
pub const SINK_BATCH_MESSAGES: usize = 256;

/// Most payload bytes a [`SendSink`] gathers before it hands them to the session unasked
/// (or half the session's `max_queued_bytes`, if that is less).
pub const SINK_BATCH_BYTES: usize = 256 << 10;

/// Most batches a [`SendSink`] has handed over and not yet seen written; beyond them it
/// waits before handing over the next.
pub const SINK_BATCHES_IN_FLIGHT: usize = 8;

/// A [`Sink`] of [`Send`] messages, from [`SessionHandle::sink`], for code that sends many.
///
/// `send` on the handle (or the actor's `do_send`) costs a mailbox message per message.
/// The sink gathers what is fed to it and hands it to the session as one mailbox message
/// when flushed, or unasked once it holds [`SINK_BATCH_MESSAGES`] messages or
/// [`SINK_BATCH_BYTES`] payload bytes. Messages keep their order, among themselves and
/// with what else reaches the session later.
///
/// - **Flush** hands over what was gathered and resolves once every message fed so far is
///   written to the socket, as a [`Send`]'s reply does. A flush that is not awaited to the
///   end (polled once, say) has still handed the batch over.
/// - **Backpressure:** what the sink has handed over and not yet seen written stays within
///   the session's [`Config::max_queued_bytes`](crate::Config::max_queued_bytes) and
///   [`SINK_BATCHES_IN_FLIGHT`] batches; beyond that, handing over the next batch (a
///   flush, or feeding a full batch) waits for the oldest to be written. So a sink alone
///   never fills the session's waiting room; several senders sharing a session can, as
///   with [`Send`].
/// - **Close** flushes, then starts the close handshake with code 1000 (normal closure)
///   and resolves once the Close frame is written (at once if a close already began). It
///   closes the session, not only this sink.
/// - **Dropping** the sink hands over what it still holds, unflushed: those messages are
///   written, or counted in [`CloseInfo::unsent`] if the connection ends first. If the
///   session refuses them (a close began already, or one of them is refused), nobody is
///   left to answer, and the session logs the refusal at `warn` level.
///
/// # Errors
/// Flushing gives the errors of [`Send`], for each batch as a whole: a batch holding a
/// message the session would refuse ([`Error::MessageTooLarge`],
/// [`Error::ControlFrameTooLong`], or [`Error::QueueFull`] when the waiting room cannot
/// take all of it) is refused whole, and none of its messages is sent.
/// [`Error::Closed`] once a close began; [`Error::ConnectionLost`] when the socket failed
/// before the batch was written. Each error is reported once, by the flush (or the feed)
/// that finds it.
pub struct SendSink {
    addr: Addr<ClientSession>,
    /// Most payload bytes handed over and not yet written: the session's bound.
    budget: usize,
    /// Payload bytes that make a full batch.
    batch_bytes: usize,
    /// Fed and not yet handed to the session.
    gathered: Vec<Send>,
    gathered_bytes: usize,
    /// The answers for the batches handed over and not yet written, oldest first, with
    /// their payload bytes.
    in_flight: VecDeque<(oneshot::Receiver<Result<(), Error>>, usize)>,
    in_flight_bytes: usize,
    closing: Closing,
}

/// How far closing through the sink has got.
enum Closing {
    Not,
    /// The request that starts the close handshake, sent after the flush.
    Requested(Pin<Box<actix::dev::Request<ClientSession, Close>>>),
    Done,
}

impl std::fmt::Debug for SendSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendSink")
            .field("gathered", &self.gathered.len())
            .field("gathered_bytes", &self.gathered_bytes)
            .field("in_flight", &self.in_flight.len())
            .field("in_flight_bytes", &self.in_flight_bytes)
            .field("closing", &!matches!(self.closing, Closing::Not))
            .finish()
    }
}

impl SendSink {
    /// Waits for the oldest batch in flight to be written (ready at once if none is).
    fn poll_oldest(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some((answer, _)) = self.in_flight.front_mut() else {
            return Poll::Ready(Ok(()));
        };
        let result = match Pin::new(answer).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(answer) => answer.unwrap_or(Err(Error::Closed)),
        };
        if let Some((_, bytes)) = self.in_flight.pop_front() {
            self.in_flight_bytes -= bytes;
        }
        Poll::Ready(result)
    }

    /// Hands what was gathered to the session as one batch, once it fits beside what is
    /// still in flight.
    fn poll_hand_over(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while !self.in_flight.is_empty()
            && (self.in_flight.len() >= SINK_BATCHES_IN_FLIGHT
                || self.in_flight_bytes + self.gathered_bytes > self.budget)
        {
            match self.poll_oldest(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result?,
            }
        }
        if !self.gathered.is_empty() {
            let (done, answer) = oneshot::channel();
            let messages = std::mem::take(&mut self.gathered);
            let bytes = std::mem::take(&mut self.gathered_bytes);
            self.addr.do_send(SendBatch {
                messages,
                done: Some(done),
            });
            self.in_flight.push_back((answer, bytes));
            self.in_flight_bytes += bytes;
        }
        Poll::Ready(Ok(()))
    }
}

impl Sink<Send> for SendSink {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.gathered.len() >= SINK_BATCH_MESSAGES || this.gathered_bytes >= this.batch_bytes {
            return this.poll_hand_over(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Send) -> Result<(), Error> {
        let this = self.get_mut();
        this.gathered_bytes += item.len();
        recycle::stock(&mut this.gathered);
        this.gathered.push(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        match this.poll_hand_over(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result?,
        }
        while !this.in_flight.is_empty() {
            match this.poll_oldest(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result?,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match &mut self.closing {
                Closing::Not => {
                    match self.as_mut().poll_flush(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(result) => result?,
                    }
                    let request = self.addr.send(Close::normal());
                    self.closing = Closing::Requested(Box::pin(request));
                }
                Closing::Requested(request) => {
                    let result = match request.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        // A close that had already begun (or ended) is what was asked for.
                        Poll::Ready(Ok(Ok(())) | Ok(Err(Error::Closed)) | Err(_)) => Ok(()),
                        Poll::Ready(Ok(Err(error))) => Err(error),
                    };
                    self.closing = Closing::Done;
                    return Poll::Ready(result);
                }
                // Anything fed since is refused by the closed session: say so.
                Closing::Done => return self.poll_flush(cx),
            }
        }
    }
}

impl Drop for SendSink {
    fn drop(&mut self) {
        if !self.gathered.is_empty() {
            self.addr.do_send(SendBatch {
                messages: std::mem::take(&mut self.gathered),
                done: None,
            });
        }
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
    /// Text and Binary messages of one read, in order, converted as they are taken.
    Data(Vec<Message>),
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
    ready: Ready,
    done: bool,
}

/// What an [`IncomingStream`] hands out next: one batch from the channel, events or the
/// data messages of one read (one field for either keeps an idle stream small).
#[derive(Debug)]
enum Ready {
    Events(VecDeque<Incoming>),
    Data(VecDeque<Message>),
}

impl Ready {
    /// The next event of the batch.
    fn pop(&mut self) -> Option<Incoming> {
        match self {
            Self::Events(events) => events.pop_front(),
            // Only Text and Binary messages are queued here: each one converts.
            Self::Data(messages) => loop {
                if let Ok(event) = incoming_of(messages.pop_front()?) {
                    return Some(event);
                }
            },
        }
    }

    /// Starts handing out `next`; the emptied batch's allocation goes back to the thread's
    /// shelf, for the session's next batch or the codec's next read.
    fn replace(&mut self, next: Ready) {
        match std::mem::replace(self, next) {
            Self::Events(drained) => recycle::give(Vec::from(drained)),
            Self::Data(drained) => recycle::give(Vec::from(drained)),
        }
    }
}

impl IncomingStream {
    pub(crate) fn new(events: mpsc::UnboundedReceiver<StreamEvent>, backlog: Arc<Backlog>) -> Self {
        Self {
            events,
            backlog,
            ready: Ready::Events(VecDeque::new()),
            done: false,
        }
    }
}

impl Stream for IncomingStream {
    type Item = Incoming;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        loop {
            if let Some(event) = self.ready.pop() {
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
                Poll::Ready(Some(StreamEvent::Data(messages))) => {
                    self.ready.replace(Ready::Data(VecDeque::from(messages)));
                }
                Poll::Ready(Some(StreamEvent::Batch(events))) => {
                    self.ready.replace(Ready::Events(VecDeque::from(events)));
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
