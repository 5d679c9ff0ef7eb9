//! The session actor: lifecycle, close handshake, outbound bound, delivery to the user.
//!
//! ```text
//!  Open ──Close / peer Close / protocol error / ping timeout──▶ Closing ──socket gone──▶ Closed
//! ```
//!
//! While `Open` the session keeps itself running (the future in its context that takes the
//! codec's events, [`TakeEvents`]), so a user who drops every address still gets every
//! message and the final `Closed`. Once `Closed` it answers everything with
//! [`Error::Closed`] and stops when the last address is dropped; it never stops itself, so
//! a [`Supervisor`] is not tricked into restarting it.

mod backlog;
mod deliver;
mod ending;
mod outbound;
mod reply;

use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use actix::prelude::*;

use crate::actors::codec::{CodecActor, CodecEvent, CodecLink};
use crate::actors::pinger::Pinger;
use crate::actors::ponger::Ponger;
use crate::actors::recycle;
use crate::config::Config;
use crate::connect::{Handshake, Upgraded};
use crate::error::Error;
use crate::messages::{
    Close, CloseInfo, CodecStopped, GetHandshake, GetStats, Incoming, Initiator, LivenessLost,
    OutFrame, PeerPing, PeerPong, ReadEnded, RttMeasured, Send, SendBatch, SessionState,
    SessionStats, SetMasking, StopChild,
};
use crate::proto::{CloseCode, CloseFrame, Message, MAX_CLOSE_REASON};
pub(crate) use backlog::Backlog;
pub(crate) use deliver::{incoming_of, Deliver};
use ending::{EndFacts, Ending};
use outbound::{Admission, OutboundQueue, Waiting};
pub use reply::SendReply;

/// Longest wait, after a protocol error, for the stream's consumer to finish with the
/// messages that came before it (see `Deliver::barrier`).
const FAIL_GRACE: Duration = Duration::from_secs(1);

/// One WebSocket client connection, as an actor.
///
/// Its public mailbox takes [`Send`], [`Close`], [`SetMasking`], [`GetHandshake`] and
/// [`GetStats`]; it delivers [`Incoming`] to the recipient given at connect time. Create one
/// with [`ClientSession::builder`].
pub struct ClientSession {
    handshake: Arc<Handshake>,
    /// Where frames go: the codec actor, through a queue shared on this arbiter. It also
    /// holds where events go (the user's recipient or stream).
    codec: Rc<CodecLink>,
    pinger: Option<Addr<Pinger>>,
    /// Started at the peer's first Ping: a session that is never pinged never pays for it.
    ponger: Option<Addr<Ponger>>,
    state: SessionState,
    outbound: OutboundQueue,
    close_timeout: Duration,
    last_rtt: Option<Duration>,
    /// Takes the codec's events ([`TakeEvents`]); keeps the actor running while the
    /// connection is open.
    take_events: Option<SpawnHandle>,
    close_timer: Option<SpawnHandle>,
    timed_out: bool,
    ending: Option<Ending>,
    /// A protocol error waiting for the stream's consumer before failing the connection.
    deferred_failure: Option<Error>,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("url", &self.handshake.url)
            .field("state", &self.state)
            .field("queued_bytes", &self.outbound.in_flight())
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A builder for a session to `url` (`ws://` or `wss://`).
    pub fn builder(url: impl Into<String>) -> crate::ClientBuilder {
        crate::ClientBuilder::new(url)
    }

    /// Starts the session and its children on the current arbiter.
    pub(crate) fn start(upgraded: Upgraded, config: &Config, deliver: Deliver) -> Addr<Self> {
        let Upgraded {
            io,
            read_buf,
            handshake,
            deflate,
        } = upgraded;
        Self::create(move |ctx| {
            let me = ctx.address().downgrade();
            let codec = CodecActor::start(io, read_buf, config, deflate, deliver);
            let pinger = config.ping_interval.map(|interval| {
                Pinger::new(me, codec.codec(), interval, config.ping_timeout).start()
            });
            Self {
                handshake: Arc::new(handshake),
                codec,
                pinger,
                ponger: None,
                state: SessionState::Open,
                outbound: OutboundQueue::new(config.max_queued_bytes),
                close_timeout: config.close_timeout,
                last_rtt: None,
                take_events: None,
                close_timer: None,
                timed_out: false,
                ending: None,
                deferred_failure: None,
            }
        })
    }

    /// Stops the pinger and the ponger (the codec stops itself once the socket is done).
    fn stop_children(&mut self) {
        if let Some(pinger) = self.pinger.take() {
            pinger.do_send(StopChild);
        }
        if let Some(ponger) = self.ponger.take() {
            ponger.do_send(StopChild);
        }
    }

    /// Takes what the codec wrote since the last look: frees queue room and forwards the
    /// waiting messages that now fit, oldest first.
    fn collect_written(&mut self) {
        let written = self.codec.take_written();
        if written > 0 {
            let ready = self.outbound.written(written);
            self.forward(ready);
        }
        self.codec.set_session_waits(self.outbound.has_waiting());
    }

    fn forward(&self, waiting: Vec<Waiting>) {
        for w in waiting {
            self.codec.write(w.frame, Some(w.reply));
        }
    }

    /// Enters `Closing`: stops the pinger and arms the close timer.
    fn begin_closing(&mut self, ending: Ending, ctx: &mut Context<Self>) {
        self.state = SessionState::Closing;
        if let Some(backlog) = self.codec.deliver().backlog() {
            backlog.release();
        }
        self.ending = Some(ending);
        if let Some(pinger) = self.pinger.take() {
            pinger.do_send(StopChild);
        }
        let limit = self.close_timeout;
        self.close_timer = Some(ctx.run_later(limit, move |act, _| {
            log::info!("close handshake not finished within {limit:?}: dropping the socket");
            act.timed_out = true;
            act.codec.abort();
        }));
    }

    /// Forwards every message waiting for room, so this side's Close frame, queued next,
    /// goes out behind everything sent before it.
    fn flush_before_close(&mut self) {
        let waiting = self.outbound.drain_waiting();
        self.forward(waiting);
        if let Some(ending) = self.ending.as_mut() {
            ending.close_sent = true;
        }
    }

    /// Queues this side's Close frame, with nobody waiting for its reply.
    fn send_close(&mut self, frame: Option<CloseFrame>) {
        self.flush_before_close();
        self.codec.write(OutFrame::Close(frame), None);
    }

    /// Fails the connection (RFC 6455 §7.1.7): send `code`, stop reading, end the socket.
    fn fail(&mut self, error: Error, reason: &str, wait_for_peer: bool, ctx: &mut Context<Self>) {
        if self.state != SessionState::Open {
            if let Some(ending) = self.ending.as_mut() {
                ending.error.get_or_insert(error);
            }
            self.codec.abort();
            return;
        }
        let code = error.close_code().unwrap_or(CloseCode::PROTOCOL_ERROR);
        log::info!("failing the connection with {code}: {error}");
        let frame = CloseFrame::new(code, truncate(reason, MAX_CLOSE_REASON)).ok();
        let mut ending = Ending::new(Initiator::Local);
        ending.error = Some(error);
        ending.failed_with = frame.clone();
        self.begin_closing(ending, ctx);
        self.send_close(frame);
        if !wait_for_peer {
            self.codec.finish();
        }
    }

    fn on_peer_close(&mut self, frame: Option<CloseFrame>, ctx: &mut Context<Self>) {
        log::debug!(
            "peer sent Close {}",
            frame
                .as_ref()
                .map_or("(no status)".to_string(), |f| f.to_string())
        );
        match self.state {
            SessionState::Open => {
                let echo = frame
                    .as_ref()
                    .and_then(|f| CloseFrame::new(f.code(), "").ok());
                let mut ending = Ending::new(Initiator::Peer);
                ending.peer_close = Some(frame);
                self.begin_closing(ending, ctx);
                self.send_close(echo);
                self.codec.finish();
            }
            SessionState::Closing => {
                if let Some(ending) = self.ending.as_mut() {
                    ending.peer_close = Some(frame);
                }
                self.codec.finish();
            }
            SessionState::Closed => {}
        }
    }

    fn close_info(&mut self, stopped: CodecStopped) -> CloseInfo {
        let ending = self
            .ending
            .take()
            .unwrap_or_else(|| Ending::new(Initiator::Peer));
        ending.into_close_info(EndFacts {
            deferred_failure: self.deferred_failure.take(),
            write_error: stopped.write_error,
            close_timeout: self.timed_out.then_some(self.close_timeout),
            unsent: stopped.unsent,
        })
    }
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Actor for ClientSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.take_events = Some(ctx.spawn(TakeEvents));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.stop_children();
        self.codec.abort();
    }
}

impl Handler<Send> for ClientSession {
    type Result = SendReply;

    fn handle(&mut self, msg: Send, _: &mut Context<Self>) -> SendReply {
        if self.state != SessionState::Open {
            return SendReply::now(Err(Error::Closed));
        }
        if let Some(error) = control_too_long(&msg) {
            return SendReply::now(Err(error));
        }
        if msg.is_data() {
            // Older messages waiting for room go first.
            self.collect_written();
        }
        self.queue_send(msg)
    }
}

impl Handler<SendBatch> for ClientSession {
    type Result = ();

    fn handle(&mut self, batch: SendBatch, _: &mut Context<Self>) {
        let count = batch.messages.len();
        let reply = self.queue_batch(batch.messages);
        if let (None, Some(error)) = (&batch.done, reply.refusal()) {
            // A dropped sink's last batch: nobody is left to answer.
            log::warn!("{count} messages of a dropped sink were refused: {error}");
        }
        reply.answer(batch.done);
    }
}

impl ClientSession {
    /// Queues a checked message: a Ping or Pong goes to the codec at once, a data message
    /// through the outbound bound.
    fn queue_send(&mut self, msg: Send) -> SendReply {
        if !msg.is_data() {
            return SendReply::forward(Rc::clone(&self.codec), OutFrame::Data(msg));
        }
        let len = msg.len();
        match self.outbound.admit(OutFrame::Data(msg), len) {
            Admission::Forward(frame) => SendReply::forward(Rc::clone(&self.codec), frame),
            Admission::Wait(answer) => {
                self.codec.set_session_waits(true);
                SendReply::later(answer)
            }
            Admission::Refuse(error) => SendReply::now(Err(error)),
        }
    }

    /// Queues a [`SendBatch`]'s messages in order, or none of them if any would be refused,
    /// and returns the reply that completes the batch.
    ///
    /// Frames are written in the order they are queued, except that a Ping or Pong goes
    /// ahead of data still waiting: so the batch is written once its last data message is
    /// (or its last message, if it holds no data).
    fn queue_batch(&mut self, mut messages: Vec<Send>) -> SendReply {
        if self.state != SessionState::Open {
            return SendReply::now(Err(Error::Closed));
        }
        if let Some(error) = messages.iter().find_map(control_too_long) {
            return SendReply::now(Err(error));
        }
        self.collect_written();
        let Some(last) = messages
            .iter()
            .rposition(Send::is_data)
            .or_else(|| messages.len().checked_sub(1))
        else {
            return SendReply::now(Ok(()));
        };
        let data_lens = messages.iter().filter(|m| m.is_data()).map(Send::len);
        let data_bytes = data_lens.clone().fold(0, usize::saturating_add);
        if self.outbound.forward_all(data_bytes) {
            // The common case: all of it goes to the codec now, as one unit.
            return SendReply::forward_batch(Rc::clone(&self.codec), messages, last);
        }
        if let Err(error) = self.outbound.admits_all(data_lens) {
            return SendReply::now(Err(error));
        }
        let mut completing = SendReply::now(Ok(()));
        for (i, message) in messages.drain(..).enumerate() {
            let reply = self.queue_send(message);
            if i == last {
                completing = reply;
            } else {
                reply.answer(None);
            }
        }
        recycle::give(messages);
        completing
    }
}

/// The error for a Ping or Pong whose payload is over 125 bytes.
fn control_too_long(msg: &Send) -> Option<Error> {
    match msg {
        Send::Ping(payload) | Send::Pong(payload)
            if payload.len() > crate::proto::MAX_CONTROL_PAYLOAD =>
        {
            Some(Error::ControlFrameTooLong(payload.len()))
        }
        _ => None,
    }
}

impl Handler<Close> for ClientSession {
    type Result = SendReply;

    fn handle(&mut self, msg: Close, ctx: &mut Context<Self>) -> SendReply {
        if self.state != SessionState::Open {
            return SendReply::now(Err(Error::Closed));
        }
        let frame = match msg.to_frame() {
            Ok(frame) => frame,
            Err(error) => return SendReply::now(Err(error)),
        };
        log::debug!("closing: {:?}", frame);
        self.begin_closing(Ending::new(Initiator::Local), ctx);
        self.flush_before_close();
        SendReply::forward(Rc::clone(&self.codec), OutFrame::Close(frame))
    }
}

impl Handler<SetMasking> for ClientSession {
    type Result = Result<(), Error>;

    fn handle(&mut self, msg: SetMasking, _: &mut Context<Self>) -> Self::Result {
        if self.state != SessionState::Open {
            return Err(Error::Closed);
        }
        self.codec.set_masking(msg.0);
        Ok(())
    }
}

impl Handler<GetHandshake> for ClientSession {
    type Result = MessageResult<GetHandshake>;

    fn handle(&mut self, _: GetHandshake, _: &mut Context<Self>) -> Self::Result {
        MessageResult(Arc::clone(&self.handshake))
    }
}

impl Handler<GetStats> for ClientSession {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        self.collect_written();
        MessageResult(SessionStats {
            state: self.state,
            last_rtt: self.last_rtt,
            queued_bytes: self.outbound.in_flight(),
        })
    }
}

/// The future that takes the codec's events: polled whenever the session's task runs, it
/// handles what the codec reported, oldest first, and the bytes it wrote, then leaves the
/// task's waker in the link for the codec's next report. It never completes; it is
/// cancelled once the session is `Closed`. It holds nothing (the link is the actor's), so
/// spawning it allocates nothing.
struct TakeEvents;

impl ActorFuture<ClientSession> for TakeEvents {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut ClientSession,
        ctx: &mut Context<ClientSession>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        let mut events = act.codec.take_events();
        for event in events.drain(..) {
            match event {
                CodecEvent::Messages(messages) => act.on_messages(messages, ctx),
                CodecEvent::ReadEnded(ended) => act.on_read_ended(ended, ctx),
                CodecEvent::Stopped(stopped) => act.on_codec_stopped(stopped, ctx),
            }
        }
        recycle::give(events);
        act.collect_written();
        act.codec.set_session_waker(task.waker());
        Poll::Pending
    }
}

// What the codec reports (see `TakeEvents`).
impl ClientSession {
    /// Messages decoded from one read.
    fn on_messages(&mut self, mut messages: Vec<Message>, ctx: &mut Context<Self>) {
        let mut events: Vec<Incoming> = recycle::take();
        events.reserve(messages.len());
        for message in messages.drain(..) {
            match incoming_of(message) {
                Ok(event) => {
                    match &event {
                        Incoming::Ping(payload) if self.state == SessionState::Open => {
                            let codec = &self.codec;
                            self.ponger
                                .get_or_insert_with(|| Ponger::new(codec.codec()).start())
                                .do_send(PeerPing(payload.clone()));
                        }
                        Incoming::Pong(payload) => {
                            if let Some(pinger) = &self.pinger {
                                pinger.do_send(PeerPong(payload.clone()));
                            }
                        }
                        _ => {}
                    }
                    events.push(event);
                }
                Err(frame) => {
                    // What came before the Close is delivered before anything it causes.
                    self.codec.deliver().send_all(std::mem::take(&mut events));
                    self.on_peer_close(frame, ctx);
                }
            }
        }
        self.codec.deliver().send_all(events);
        recycle::give(messages);
    }

    fn on_read_ended(&mut self, ended: ReadEnded, ctx: &mut Context<Self>) {
        match ended {
            ReadEnded::Protocol(error) => {
                let reason = error.to_string();
                let error = Error::Protocol(error);
                let Some(handled) = self.codec.deliver().barrier() else {
                    self.fail(error, &reason, false, ctx);
                    return;
                };
                // Answers to the messages that preceded the violation go out first.
                self.deferred_failure = Some(error);
                let wait = actix_rt::time::timeout(FAIL_GRACE, handled);
                ctx.spawn(wait.into_actor(self).map(move |_, act, ctx| {
                    if let Some(error) = act.deferred_failure.take() {
                        act.fail(error, &reason, false, ctx);
                    }
                }));
            }
            ReadEnded::Eof | ReadEnded::Io(_) => {
                let peer_closed = self
                    .ending
                    .as_ref()
                    .is_some_and(|e| e.peer_close.is_some() || e.failed_with.is_some());
                if !peer_closed {
                    if let ReadEnded::Io(why) = ended {
                        let ending = self
                            .ending
                            .get_or_insert_with(|| Ending::new(Initiator::Peer));
                        ending.error.get_or_insert(Error::ConnectionLost(why));
                    }
                    log::debug!("socket ended without a close handshake");
                    self.codec.abort();
                }
            }
        }
    }

    /// The codec actor stopped: the socket is gone.
    fn on_codec_stopped(&mut self, stopped: CodecStopped, ctx: &mut Context<Self>) {
        if self.state == SessionState::Closed {
            return;
        }
        // Frames queued after the codec stopped, and messages still waiting for room.
        let mut never_sent = self.codec.fail_queued(&Error::Closed);
        for waiting in self.outbound.drain_waiting() {
            never_sent += 1;
            let _ = waiting.reply.send(Err(Error::Closed));
        }
        let mut info = self.close_info(stopped);
        info.unsent += never_sent;
        log::info!(
            "closed: code {} ({:?}), clean {}, started by {:?}",
            info.code,
            info.reason,
            info.clean,
            info.initiator
        );
        self.state = SessionState::Closed;
        for handle in [self.close_timer.take(), self.take_events.take()]
            .into_iter()
            .flatten()
        {
            ctx.cancel_future(handle);
        }
        self.stop_children();
        self.codec.deliver().send(Incoming::Closed(info));
    }
}

impl Handler<RttMeasured> for ClientSession {
    type Result = ();

    fn handle(&mut self, msg: RttMeasured, _: &mut Context<Self>) {
        self.last_rtt = Some(msg.0);
    }
}

impl Handler<LivenessLost> for ClientSession {
    type Result = ();

    fn handle(&mut self, msg: LivenessLost, ctx: &mut Context<Self>) {
        self.fail(Error::PingTimeout(msg.0), "ping timeout", true, ctx);
    }
}
