//! The codec actor: owns the socket, turns bytes into messages and frames into bytes.
//!
//! Reading is a stream ([`reader::FrameReader`]) added to the actor's context; what it
//! decodes goes to the session through the link they share ([`handoff`]). The session's
//! frames arrive through the same link, taken by a future that lives in the actor's
//! context ([`TakeFrames`]); the pinger's and the ponger's arrive as `Write` messages.
//! Writing takes one batch of encoded frames at a time ([`outbox::Outbox`]), written at
//! once when the socket takes it and by a spawned future otherwise, so many small sends
//! share one syscall and a large message never blocks a control frame for longer than one
//! batch. A batch of several frames first waits a scheduler turn or two while messages
//! keep arriving ([`CodecActor::write_soon`]), so the replies to them go out with it.
//! Frames are masked with a fresh key from a cryptographically secure generator (`rand`'s
//! thread-local ChaCha) while masking is on.
//!
//! The actor stops when the socket is done: both the read side ended and the write side
//! was shut after [`Finish`], or at once on [`Abort`] or a write error. Its `stopped`
//! fails whatever was still queued and tells the session with [`CodecEvent::Stopped`].

mod handoff;
mod outbox;
mod pool;
mod reader;
mod write_wait;

use actix::prelude::*;
use awc::BoxedSocket;
use bytes::BytesMut;
use rand::Rng;
use tokio::io::{AsyncWrite, AsyncWriteExt, WriteHalf};

use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use crate::actors::recycle;
use crate::actors::session::Deliver;
use crate::config::Config;
use crate::error::Error;
use crate::messages::{Abort, CodecStopped, Finish, Write};
use crate::proto::{DeflateParams, Deflater, Inflater, Receiver, ReceiverLimits};
use crate::runtime;
pub(crate) use handoff::{CodecEvent, CodecLink};
use outbox::{fail_all, Done, Outbox, Queued};
use reader::{FrameReader, ReadEvent};
use write_wait::WriteWait;

/// Bytes encoded per write batch (a batch may exceed it by one frame).
const BATCH_LIMIT: usize = 256 * 1024;
/// Most scheduler turns a write of several queued frames waits while reads keep bringing
/// messages (see [`CodecActor::write_soon`]).
const MAX_DEFERRED_TURNS: u8 = 2;

/// Owns the socket of one session.
pub(crate) struct CodecActor {
    /// The way to and from the session (see [`handoff`]).
    link: Rc<CodecLink>,
    /// The write half; `None` while a write is in flight and after shutdown.
    writer: Option<WriteHalf<BoxedSocket>>,
    outbox: Outbox,
    /// Frames and messages of the write in flight, answered when it completes.
    in_flight: Vec<Done>,
    /// A write is scheduled: once the mailbox is drained, or after a scheduler turn.
    write_scheduled: bool,
    /// Scheduler turns the scheduled write has waited so far.
    deferred_turns: u8,
    /// Messages were read since the scheduled write last waited a turn.
    read_since_turn: bool,
    /// Whether a pipelined write waits a turn first ([`write_wait`]).
    write_wait: WriteWait,
    /// `Finish` arrived: shut the write side once the outbox is written.
    finishing: bool,
    write_shut: bool,
    read_done: bool,
    /// Data messages that were accepted and never written.
    unsent: usize,
    write_error: Option<String>,
}

impl CodecActor {
    /// Starts the codec actor on the current arbiter with the upgraded socket and the bytes
    /// already read from it; returns the session's end of the way to it.
    pub(crate) fn start(
        io: BoxedSocket,
        leftover: BytesMut,
        config: &Config,
        deflate: Option<DeflateParams>,
        deliver: Deliver,
    ) -> Rc<CodecLink> {
        let backlog = deliver.backlog();
        let (read, write) = tokio::io::split(io);
        let limits = ReceiverLimits {
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            allowed_rsv: 0,
        };
        let level = config.compression.map_or(1, |c| c.level);
        let (receiver, deflater) = match deflate {
            Some(params) => (
                Receiver::with_inflater(limits, Inflater::new(&params)),
                Some(Deflater::new(&params, level)),
            ),
            None => (Receiver::new(limits), None),
        };
        let fragment_size = config.fragment_size;
        let mut session_end = None;
        Self::create(|ctx| {
            ctx.add_stream(FrameReader::new(read, leftover, receiver, backlog));
            ctx.spawn(TakeFrames);
            let link = Rc::new(CodecLink::new(
                ctx.address().downgrade(),
                config.masking,
                deliver,
            ));
            session_end = Some(Rc::clone(&link));
            Self {
                link,
                writer: Some(write),
                outbox: Outbox::new(fragment_size, deflater),
                in_flight: Vec::new(),
                write_scheduled: false,
                deferred_turns: 0,
                read_since_turn: false,
                write_wait: WriteWait::default(),
                finishing: false,
                write_shut: false,
                read_done: false,
                unsent: 0,
                write_error: None,
            }
        });
        session_end.expect("Actor::create runs its closure before returning")
    }

    /// Schedules the next write for after the mailbox is drained, so every frame that is
    /// already waiting in it goes out in the same batch (one syscall for many sends).
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.writer_busy() {
            return;
        }
        if self.outbox.is_empty() && !self.must_shut() {
            return; // nothing to write and nothing to shut
        }
        self.write_scheduled = true;
        ctx.spawn(actix::fut::ready(()).map(|(), act: &mut Self, ctx| {
            act.write_scheduled = false;
            act.start_write(ctx);
        }));
    }

    /// Starts writing what the session just queued. One frame goes out at once. Several
    /// frames mean traffic is pipelined: the write then waits one scheduler turn, in which
    /// the runtime polls for I/O, so that messages that arrived meanwhile are read (and
    /// the replies the session makes to them join this batch) before it is written; and
    /// another turn, up to [`MAX_DEFERRED_TURNS`], while reads keep bringing messages.
    ///
    /// Writing right away instead makes many small writes that land while the peer is still
    /// sending, which costs the peer more CPU time per message: against a saturated echo
    /// server this wait raised msgs/s by 7–9 % at 1 KiB (bench/RESULTS.md, "Write timing").
    /// Each turn costs this thread an I/O poll, though: where the client rather than the
    /// peer is the bottleneck, the wait is pure cost (bench/RESULTS.md, "With the echo
    /// server on two threads").
    /// So the wait is kept only while its turns see reads ([`write_wait`]): against a peer
    /// that answers a whole batch at once and sends nothing else, pipelined writes soon go
    /// out at once, but for a probe now and then.
    /// On a thread that spins before it parks ([`runtime::spinning_runtime`]) the spin
    /// already lets messages gather between reads, and waiting turns as well cost 3–6 %
    /// of msgs/s there: such a thread writes at once.
    fn write_soon(&mut self, ctx: &mut Context<Self>) {
        if self.writer_busy() {
            return;
        }
        let pipelined =
            self.outbox.len() >= 2 && self.batch_has_room() && !runtime::spins_before_parking();
        if !pipelined || !self.write_wait.should_wait() {
            return self.start_write(ctx);
        }
        self.write_scheduled = true;
        self.deferred_turns = 0;
        self.wait_one_turn(ctx);
    }

    /// Lets the runtime run once (polling for I/O) before the scheduled write; then either
    /// waits another turn, if messages were read and turns remain, or writes.
    fn wait_one_turn(&mut self, ctx: &mut Context<Self>) {
        self.deferred_turns += 1;
        self.read_since_turn = false;
        ctx.spawn(
            tokio::task::yield_now()
                .into_actor(self)
                .map(|(), act, ctx| {
                    if act.deferred_turns == 1 {
                        act.write_wait.judge(act.read_since_turn);
                    }
                    let reads_continue = act.read_since_turn
                        && act.deferred_turns < MAX_DEFERRED_TURNS
                        && act.batch_has_room();
                    if reads_continue {
                        act.wait_one_turn(ctx);
                    } else {
                        act.write_scheduled = false;
                        act.start_write(ctx);
                    }
                }),
        );
    }

    /// No write may start now: one is scheduled or in flight (and pumps again when done),
    /// or the write side is shut.
    fn writer_busy(&self) -> bool {
        self.write_scheduled || self.writer.is_none()
    }

    /// What is queued encodes to less than one full write batch.
    fn batch_has_room(&self) -> bool {
        self.outbox.fits_under(BATCH_LIMIT)
    }

    /// Starts the next write (or the shutdown) if nothing is in flight.
    fn start_write(&mut self, ctx: &mut Context<Self>) {
        if self.outbox.is_empty() {
            if self.must_shut() {
                self.shut_write(ctx);
            }
            return;
        }
        let Some(mut writer) = self.writer.take() else {
            return; // a write is in flight; it pumps again when done
        };
        // Sized once: growing a large batch frame by frame would copy it repeatedly. Most
        // batches come from the thread's pool (see `pool::is_pooled`), the tiniest from the
        // allocator; either way the session holds no write buffer between writes.
        let mut batch = pool::take(self.outbox.batch_len_hint(BATCH_LIMIT));
        recycle::stock(&mut self.in_flight);
        let mut rng = rand::rng();
        self.outbox.fill(
            &mut batch.buf,
            BATCH_LIMIT,
            &mut || rng.next_u32().to_ne_bytes(),
            &mut self.in_flight,
        );
        log::trace!(
            "writing {} bytes ({} frames/messages)",
            batch.buf.len(),
            self.in_flight.len()
        );
        // Most writes complete at once: try without a task first, and wait in a spawned
        // future only for what the socket did not take.
        let offset = match write_now(&mut writer, &batch.buf) {
            Ok(None) => return self.written(writer, batch, Ok(()), ctx),
            Ok(Some(offset)) => offset,
            Err(error) => return self.written(writer, batch, Err(error), ctx),
        };
        let write = async move {
            let result = async {
                writer.write_all(&batch.buf[offset..]).await?;
                writer.flush().await
            }
            .await;
            (writer, batch, result)
        };
        ctx.spawn(
            write
                .into_actor(self)
                .map(|(writer, batch, result), act, ctx| act.written(writer, batch, result, ctx)),
        );
    }

    fn written(
        &mut self,
        writer: WriteHalf<BoxedSocket>,
        mut batch: pool::Pooled,
        result: std::io::Result<()>,
        ctx: &mut Context<Self>,
    ) {
        match result {
            Ok(()) => {
                let mut done = std::mem::take(&mut self.in_flight);
                let bytes: usize = done.drain(..).map(|d| d.complete(Ok(()))).sum();
                recycle::give(done);
                if bytes > 0 {
                    self.link.report_written(bytes);
                }
                // The pool records the allocation's size: a reused buffer may be a view of
                // its tail, and one that had to grow past the hint is a new allocation.
                batch.size = batch.size.max(batch.buf.capacity());
                pool::give(batch);
                self.outbox.release_if_empty();
                self.writer = Some(writer);
                self.pump(ctx);
            }
            Err(error) => {
                log::debug!("write failed: {error}");
                // `stopped` fails the batch in flight and everything queued with it.
                self.write_error = Some(error.to_string());
                ctx.stop();
            }
        }
    }

    /// `Finish` arrived and the write side is not shut yet.
    fn must_shut(&self) -> bool {
        self.finishing && !self.write_shut
    }

    fn shut_write(&mut self, ctx: &mut Context<Self>) {
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        self.write_shut = true;
        let shutdown = async move { writer.shutdown().await };
        ctx.spawn(shutdown.into_actor(self).map(|result, act, ctx| {
            if let Err(error) = result {
                log::debug!("shutdown failed: {error}");
            }
            act.stop_if_done(ctx);
        }));
    }

    /// Moves the frames the session queued into the outbox; `false` if there were none.
    fn take_session_frames(&mut self) -> bool {
        let mut queued = self.link.take();
        let any = !queued.is_empty();
        if self.accepts_frames() {
            queued = self.outbox.push_all(queued);
        } else {
            for entry in queued.drain(..) {
                self.queue(entry);
            }
        }
        recycle::give(queued);
        any
    }

    /// Whether frames are still taken: the write side is not finishing.
    fn accepts_frames(&self) -> bool {
        !(self.finishing || self.write_shut)
    }

    /// Puts a frame in the outbox, or refuses it once the write side is finishing.
    fn queue(&mut self, entry: Queued) {
        if !self.accepts_frames() {
            if let Some(reply) = entry.reply {
                let _ = reply.send(Err(Error::Closed));
            }
            return;
        }
        self.outbox.push(entry);
    }

    fn stop_if_done(&mut self, ctx: &mut Context<Self>) {
        if self.read_done && self.write_shut {
            ctx.stop();
        }
    }
}

impl Actor for CodecActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        let error = match &self.write_error {
            Some(why) => Error::ConnectionLost(why.clone()),
            None => Error::Closed,
        };
        self.unsent += fail_all(self.in_flight.drain(..), &error);
        self.unsent += self.outbox.fail_all(&error);
        self.unsent += self.link.fail_queued(&error);
        self.link.report(CodecEvent::Stopped(CodecStopped {
            unsent: self.unsent,
            write_error: self.write_error.take(),
        }));
        log::debug!("socket closed");
    }
}

impl StreamHandler<ReadEvent> for CodecActor {
    fn handle(&mut self, event: ReadEvent, _: &mut Context<Self>) {
        self.read_since_turn = true;
        match event {
            ReadEvent::Messages(messages) => self.link.report_messages(messages),
            ReadEvent::Ended(ended) => self.link.report(CodecEvent::ReadEnded(ended)),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.read_done = true;
        self.stop_if_done(ctx);
    }
}

impl Handler<Write> for CodecActor {
    type Result = ();

    fn handle(&mut self, msg: Write, ctx: &mut Context<Self>) {
        self.queue(Queued {
            frame: msg.frame,
            reply: msg.reply,
            masked: self.link.masking(),
        });
        self.pump(ctx);
    }
}

/// The future that takes the session's frames: polled whenever the codec's task runs, it
/// moves what the session queued into the outbox and starts writing it, then leaves the
/// task's waker in the link for the session's next push. It never completes, so the actor
/// keeps running without addresses and always stops explicitly. It holds nothing (the link
/// is the actor's), so spawning it allocates nothing.
struct TakeFrames;

impl ActorFuture<CodecActor> for TakeFrames {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut CodecActor,
        ctx: &mut Context<CodecActor>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        if act.take_session_frames() {
            // The session's batch is complete: write it, unless a write is in flight.
            act.write_soon(ctx);
        }
        act.link.set_codec_waker(task.waker());
        Poll::Pending
    }
}

impl Handler<Finish> for CodecActor {
    type Result = ();

    fn handle(&mut self, _: Finish, ctx: &mut Context<Self>) {
        // The mailbox runs before `TakeFrames`: take the Close frame queued before this.
        self.take_session_frames();
        self.finishing = true;
        self.pump(ctx);
    }
}

impl Handler<Abort> for CodecActor {
    type Result = ();

    fn handle(&mut self, _: Abort, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Writes what the socket takes now, without waiting: `Ok(None)` once all of `batch` is
/// written and flushed, `Ok(Some(offset))` when the rest, from `offset`, must wait.
///
/// It polls with a waker that does nothing. That is sound because a `Pending` here is always
/// followed by a spawned write that polls the same socket again with the task's own waker,
/// which replaces this one.
fn write_now(writer: &mut WriteHalf<BoxedSocket>, batch: &[u8]) -> std::io::Result<Option<usize>> {
    let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
    let mut offset = 0;
    while offset < batch.len() {
        match Pin::new(&mut *writer).poll_write(&mut cx, &batch[offset..]) {
            Poll::Ready(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => offset += n,
            Poll::Ready(Err(error)) => return Err(error),
            Poll::Pending => return Ok(Some(offset)),
        }
    }
    match Pin::new(writer).poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Ok(None),
        Poll::Ready(Err(error)) => Err(error),
        Poll::Pending => Ok(Some(offset)),
    }
}
