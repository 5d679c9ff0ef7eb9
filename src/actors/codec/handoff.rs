//! The way between a session and its codec actor: two shared queues and two wakers,
//! instead of one mailbox message per batch.
//!
//! The session starts its codec actor from its own `create`, so both always run on the
//! same arbiter thread and can share a [`CodecLink`] through an `Rc`. Each side keeps one
//! long-lived future in its actor context that drains its queue whenever its task is
//! polled, and leaves its task's waker in the link before it returns `Pending`:
//!
//! * **Frames, session → codec.** The session pushes; the push that finds the queue empty
//!   wakes the codec, which takes everything queued by the time it runs.
//! * **Events, codec → session.** Decoded messages, the end of reading, and the codec's
//!   stop, in the order they happened; each push wakes the session.
//! * **Data, codec → user.** A read that decoded only Text and Binary messages needs nothing
//!   from the session, so while the session has no event left to handle they go straight
//!   to the user's recipient or stream, which the link holds: no wake-up, no session turn.
//!   Anything the session still has to handle came earlier, so it goes through the
//!   session too, and the user sees everything in wire order.
//! * **Written bytes, codec → session.** The codec adds them to a counter, which the
//!   session reads whenever it runs. Only while messages wait for room does the codec also
//!   wake the session for them.
//!
//! Waking a task costs no allocation, where a mailbox message costs two (its envelope and
//! its queue node), and the codec no longer upgrades a weak address per read.
//!
//! Ordering: the codec's mailbox messages (`Finish`, `Abort`, the pinger's and ponger's
//! `Write`) are handled before its context's futures run, so the `Finish` handler
//! first takes what the session queued: a Close frame queued before `Finish` is written
//! before the write side is shut. Masking is stamped on each frame as it is queued, so a
//! later `SetMasking` cannot change frames sent before it.

use std::cell::{Cell, RefCell};
use std::task::Waker;

use actix::WeakAddr;

pub(crate) use super::outbox::Queued;
use super::outbox::{fail_all, Done};
use super::CodecActor;
use crate::actors::recycle::{self, recyclable};
use crate::actors::session::Deliver;
use crate::error::Error;
use crate::messages::{Abort, CodecStopped, Finish, OutFrame, ReadEnded, Reply, Send};
use crate::proto::Message;

recyclable!(CodecEvent, Send);

/// What the codec tells its session, in the order it happened.
#[derive(Debug)]
pub(crate) enum CodecEvent {
    /// Messages decoded from one read, in wire order.
    Messages(Vec<Message>),
    /// Reading ended (or, for a protocol error, stopped decoding).
    ReadEnded(ReadEnded),
    /// The codec actor stopped: the socket is gone. Always the last event.
    Stopped(CodecStopped),
}

/// A waker left by a task that waits for the other side; empty while that task is
/// scheduled anyway.
#[derive(Default)]
struct WakeSlot(Cell<Option<Waker>>);

impl std::fmt::Debug for WakeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waker = self.0.take();
        let waiting = waker.is_some();
        self.0.set(waker);
        f.debug_tuple("WakeSlot").field(&waiting).finish()
    }
}

impl WakeSlot {
    /// Leaves `waker` here (keeps the stored one when it wakes the same task).
    fn register(&self, waker: &Waker) {
        let stored = self.0.take();
        let keep = stored.filter(|stored| stored.will_wake(waker));
        self.0.set(Some(keep.unwrap_or_else(|| waker.clone())));
    }

    fn wake(&self) {
        if let Some(waker) = self.0.take() {
            waker.wake();
        }
    }
}

/// The queues and the written-bytes counter, without the wake-ups.
#[derive(Debug, Default)]
struct Handoff {
    queued: RefCell<Vec<Queued>>,
    events: RefCell<Vec<CodecEvent>>,
    /// Data payload bytes written since the session last looked.
    written: Cell<usize>,
    /// The session has messages waiting for room: every write must be reported.
    session_waits: Cell<bool>,
}

impl Handoff {
    /// Queues `entry`; `true` when the queue was empty before (the codec must be woken).
    fn push(&self, entry: Queued) -> bool {
        self.push_all(std::iter::once(entry))
    }

    /// Queues every one of `entries`, in order; `true` when the queue was empty before and
    /// is not now.
    fn push_all(&self, entries: impl IntoIterator<Item = Queued>) -> bool {
        let mut queued = self.queued.borrow_mut();
        recycle::stock(&mut queued);
        let was_empty = queued.is_empty();
        queued.extend(entries);
        was_empty && !queued.is_empty()
    }

    fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *self.queued.borrow_mut())
    }

    fn fail_all(&self, error: &Error) -> usize {
        let queued = self.take().into_iter();
        fail_all(queued.map(Done::from), error)
    }

    fn push_event(&self, event: CodecEvent) {
        let mut events = self.events.borrow_mut();
        recycle::stock(&mut events);
        events.push(event);
    }

    fn has_events(&self) -> bool {
        !self.events.borrow().is_empty()
    }

    fn take_events(&self) -> Vec<CodecEvent> {
        std::mem::take(&mut *self.events.borrow_mut())
    }

    fn report_written(&self, bytes: usize) -> bool {
        self.written.set(self.written.get() + bytes);
        self.session_waits.get()
    }
}

/// The way between a session and its codec actor, shared by both through an `Rc`.
///
/// It holds a weak address of the codec, for its rare mailbox messages (`Finish`, `Abort`):
/// a strong one costs two allocations per session, even idle. The codec actor
/// does not need addresses to keep running, because [`TakeFrames`](super::TakeFrames)
/// never completes; it always stops explicitly (socket done, `Abort`, write error), and
/// dropping its state then leaves the session as the only owner of the link. One
/// allocation per session; its queues are empty between batches, so an idle session holds
/// no buffer here.
#[derive(Debug)]
pub(crate) struct CodecLink {
    codec: WeakAddr<CodecActor>,
    handoff: Handoff,
    /// Masking for frames queued from now on.
    masking: Cell<bool>,
    /// The codec's task, woken for frames.
    codec_task: WakeSlot,
    /// The session's task, woken for events and, while messages wait for room, for written
    /// bytes.
    session_task: WakeSlot,
    /// Where the session's events go: the user's recipient or stream.
    deliver: Deliver,
}

impl CodecLink {
    pub(crate) fn new(codec: WeakAddr<CodecActor>, masking: bool, deliver: Deliver) -> Self {
        Self {
            codec,
            handoff: Handoff::default(),
            masking: Cell::new(masking),
            codec_task: WakeSlot::default(),
            session_task: WakeSlot::default(),
            deliver,
        }
    }

    /// Where the session's events go.
    pub(crate) fn deliver(&self) -> &Deliver {
        &self.deliver
    }

    // ----- the session's end

    /// The codec actor's address, for the pinger and the ponger.
    pub(crate) fn codec(&self) -> WeakAddr<CodecActor> {
        self.codec.clone()
    }

    /// Tells the codec to drop the socket now (nothing happens if it has stopped already).
    pub(crate) fn abort(&self) {
        if let Some(codec) = self.codec.upgrade() {
            codec.do_send(Abort);
        }
    }

    /// Queues `frame` for writing; `reply` is answered once it is written or refused.
    pub(crate) fn write(&self, frame: OutFrame, reply: Option<Reply>) {
        let entry = Queued {
            frame,
            reply,
            masked: self.masking.get(),
        };
        if self.handoff.push(entry) {
            // A stopped codec never takes this; the session then fails the queue itself.
            self.codec_task.wake();
        }
    }

    /// Queues a batch of messages for writing, in order, with one wake-up at most;
    /// `reply` goes with the message at index `last` and is answered once that one is
    /// written (or refused).
    ///
    /// A batch of Text and Binary messages only (a sink's, usually) is queued as it is, as
    /// one run ([`OutFrame::Run`]): no entry per message on the way. Otherwise each message
    /// becomes an entry of its own, and the emptied vector goes back to [`recycle`], for
    /// the sink's next batch.
    pub(crate) fn write_batch(&self, mut messages: Vec<Send>, last: usize, reply: Option<Reply>) {
        let data_bytes = messages.iter().try_fold(0usize, |sum, message| {
            message.is_data().then(|| sum.saturating_add(message.len()))
        });
        if let Some(bytes) = data_bytes.filter(|_| last + 1 == messages.len()) {
            return self.write(OutFrame::Run { messages, bytes }, reply);
        }
        let masked = self.masking.get();
        let mut reply = reply;
        let entries = messages.drain(..).enumerate().map(|(i, message)| Queued {
            frame: OutFrame::Data(message),
            reply: if i == last { reply.take() } else { None },
            masked,
        });
        if self.handoff.push_all(entries) {
            self.codec_task.wake();
        }
        recycle::give(messages);
    }

    /// Everything the codec reported since the last call, oldest first. Give the emptied
    /// vector back to [`recycle`] so the codec's next report reuses it.
    pub(crate) fn take_events(&self) -> Vec<CodecEvent> {
        self.handoff.take_events()
    }

    /// Leaves the session task's waker, to be woken for the next event.
    pub(crate) fn set_session_waker(&self, waker: &Waker) {
        self.session_task.register(waker);
    }

    /// Data payload bytes the codec wrote since the last call.
    pub(crate) fn take_written(&self) -> usize {
        self.handoff.written.replace(0)
    }

    /// Whether the session has messages waiting for room, so that every write wakes it.
    pub(crate) fn set_session_waits(&self, waits: bool) {
        self.handoff.session_waits.set(waits);
    }

    /// Masking for frames queued from now on; the codec also uses it for the pinger's and
    /// the ponger's frames.
    pub(crate) fn set_masking(&self, masking: bool) {
        log::debug!("masking {}", if masking { "on" } else { "off" });
        self.masking.set(masking);
    }

    /// Whether frames queued now are masked.
    pub(crate) fn masking(&self) -> bool {
        self.masking.get()
    }

    /// Tells the codec to shut the write side once everything queued is written.
    pub(crate) fn finish(&self) {
        if let Some(codec) = self.codec.upgrade() {
            codec.do_send(Finish);
        }
    }

    /// Answers everything still queued with `error` (used by the codec when it stops, and
    /// by the session for what was queued after that); returns how many were data
    /// messages.
    pub(crate) fn fail_queued(&self, error: &Error) -> usize {
        self.handoff.fail_all(error)
    }

    // ----- the codec's end

    /// Everything queued so far, oldest first. Give the emptied vector back to
    /// [`recycle`] so the session's next batch reuses it.
    pub(crate) fn take(&self) -> Vec<Queued> {
        self.handoff.take()
    }

    /// Leaves the codec task's waker, to be woken when the session queues a frame.
    pub(crate) fn set_codec_waker(&self, waker: &Waker) {
        self.codec_task.register(waker);
    }

    /// Tells the session `event`.
    pub(crate) fn report(&self, event: CodecEvent) {
        self.handoff.push_event(event);
        self.session_task.wake();
    }

    /// Hands on the messages decoded from one read. Data messages (Text, Binary) need
    /// nothing from the session: they go straight to the user, unless the session still has
    /// events to handle, which must reach the user first. Anything else goes through the
    /// session, which answers Pings, feeds Pongs to the pinger and handles a Close.
    pub(crate) fn report_messages(&self, messages: Vec<Message>) {
        let messages = match self.handoff.has_events() {
            true => messages,
            false => match self.deliver.send_data(messages) {
                Ok(()) => return,
                Err(messages) => messages,
            },
        };
        self.report(CodecEvent::Messages(messages));
    }

    /// `bytes` of data payload were written; wakes the session if messages wait for room.
    pub(crate) fn report_written(&self, bytes: usize) {
        if self.handoff.report_written(bytes) {
            self.session_task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Incoming;

    fn data(text: &str) -> Queued {
        Queued {
            frame: OutFrame::Data(Send::text(text.to_string())),
            reply: None,
            masked: true,
        }
    }

    #[test]
    fn only_the_push_into_an_empty_queue_asks_for_a_wake_up() {
        let handoff = Handoff::default();
        assert!(handoff.push(data("a")));
        assert!(!handoff.push(data("b")));
        assert_eq!(handoff.take().len(), 2);
        assert!(handoff.push(data("c")), "empty again after take");
    }

    #[test]
    fn written_bytes_add_up_and_are_reported_only_while_the_session_waits() {
        let handoff = Handoff::default();
        assert!(!handoff.report_written(3));
        assert!(!handoff.report_written(4));
        assert_eq!(handoff.written.replace(0), 7);
        handoff.session_waits.set(true);
        assert!(handoff.report_written(1));
    }

    #[test]
    fn a_wake_slot_wakes_the_task_that_registered_last_and_only_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        struct Count(AtomicUsize);
        impl futures::task::ArcWake for Count {
            fn wake_by_ref(this: &Arc<Self>) {
                this.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (first, second) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let slot = WakeSlot::default();
        slot.wake(); // nobody waits: nothing happens
        slot.register(&futures::task::waker(Arc::clone(&first)));
        slot.register(&futures::task::waker(Arc::clone(&second)));
        slot.wake();
        slot.wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "woken once, then the slot is empty"
        );
    }

    #[test]
    fn events_are_taken_in_the_order_they_were_reported() {
        let handoff = Handoff::default();
        handoff.push_event(CodecEvent::Messages(vec![Message::Binary(
            bytes::Bytes::new(),
        )]));
        handoff.push_event(CodecEvent::ReadEnded(ReadEnded::Eof));
        handoff.push_event(CodecEvent::Stopped(CodecStopped {
            unsent: 0,
            write_error: None,
        }));
        let events = handoff.take_events();
        assert!(matches!(
            events[..],
            [
                CodecEvent::Messages(_),
                CodecEvent::ReadEnded(ReadEnded::Eof),
                CodecEvent::Stopped(_)
            ]
        ));
        assert!(handoff.take_events().is_empty());
    }

    #[test]
    fn data_goes_straight_to_the_user_only_while_the_session_has_no_event_left() {
        use crate::actors::session::{incoming_of, Backlog};
        use crate::handle::StreamEvent;
        use bytes::Bytes;
        use futures::channel::mpsc;

        let (events, mut stream) = mpsc::unbounded();
        let deliver = Deliver::Channel(events, Backlog::new(1 << 20));
        let (codec, _mailbox) = actix::dev::channel::channel::<CodecActor>(16);
        let link = CodecLink::new(actix::Addr::new(codec).downgrade(), true, deliver);
        let binary = |b: &'static [u8]| Message::Binary(Bytes::from_static(b));
        let mut delivered = || -> Vec<Incoming> {
            let mut all = Vec::new();
            while let Ok(event) = stream.try_recv() {
                match event {
                    StreamEvent::Batch(batch) => all.extend(batch),
                    StreamEvent::Data(data) => {
                        all.extend(data.into_iter().filter_map(|m| incoming_of(m).ok()))
                    }
                    StreamEvent::Barrier(_) => {}
                }
            }
            all
        };

        link.report_messages(vec![binary(b"a"), binary(b"b")]);
        assert_eq!(delivered().len(), 2, "data alone goes straight on");
        assert!(!link.handoff.has_events());

        link.report_messages(vec![binary(b"c"), Message::Ping(Bytes::new())]);
        link.report_messages(vec![binary(b"d")]);
        assert!(
            delivered().is_empty(),
            "a Ping, and what follows it, wait for the session"
        );
        let events = link.take_events();
        assert_eq!(events.len(), 2);

        link.report_messages(vec![binary(b"e")]);
        assert_eq!(
            delivered(),
            vec![Incoming::Binary(Bytes::from_static(b"e"))],
            "once the session took its events, data goes straight on again"
        );
    }

    #[test]
    fn failing_answers_every_sender_and_counts_data_messages() {
        let handoff = Handoff::default();
        let (reply, answer) = tokio::sync::oneshot::channel();
        handoff.push(Queued {
            reply: Some(reply),
            ..data("a")
        });
        handoff.push(Queued {
            frame: OutFrame::Data(Send::Ping(bytes::Bytes::new())),
            reply: None,
            masked: true,
        });
        handoff.push(Queued {
            frame: OutFrame::Close(None),
            reply: None,
            masked: true,
        });
        assert_eq!(handoff.fail_all(&Error::Closed), 1);
        assert!(matches!(answer.blocking_recv(), Ok(Err(Error::Closed))));
        assert!(handoff.take().is_empty());
    }
}
