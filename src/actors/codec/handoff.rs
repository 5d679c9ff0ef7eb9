//! How the session's frames reach its codec actor: one shared queue and one wake-up
//! message per batch, instead of one mailbox message per frame.
//!
//! The session starts its codec actor from its own `create`, so both always run on the
//! same arbiter thread and can share the queue, a [`CodecLink`], through an `Rc`. The
//! session pushes; the push that finds the queue empty also sends the codec one [`Flush`],
//! and the codec takes everything queued by the time it handles it.
//!
//! The way back is shared too: the codec adds the data bytes it wrote to a counter, which
//! the session reads when a new message arrives, so a session under its queue bound pays no
//! message per write. Only while messages wait for room does the codec also send
//! [`Written`](crate::messages::Written), so they move on without waiting for a new send.
//!
//! Ordering rests on one invariant: while the queue is not empty, a `Flush` that the codec
//! has not handled yet sits in its mailbox ahead of every message the session sent after
//! the push. So a Close frame queued before `Finish` is taken before `Finish` is handled,
//! as if both had gone through the mailbox. Masking is stamped on each frame as it is
//! queued, so a later `SetMasking` cannot change frames sent before it.

use std::cell::{Cell, RefCell};

use actix::Addr;

use super::outbox::{fail_all, Done};
use super::CodecActor;
use crate::error::Error;
use crate::messages::{Finish, Flush, OutFrame, Reply, SetMask};

/// A frame queued by the session, with its sender's reply and the masking it was sent with.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) frame: OutFrame,
    pub(crate) reply: Option<Reply>,
    pub(crate) masked: bool,
}

/// The queue and the written-bytes counter, without the wake-up.
#[derive(Debug, Default)]
struct Handoff {
    queued: RefCell<Vec<Queued>>,
    /// Data payload bytes written since the session last looked.
    written: Cell<usize>,
    /// The session has messages waiting for room: every write must be reported.
    session_waits: Cell<bool>,
}

impl Handoff {
    /// Queues `entry`; `true` when the queue was empty before (the codec must be woken).
    fn push(&self, entry: Queued) -> bool {
        let mut queued = self.queued.borrow_mut();
        queued.push(entry);
        queued.len() == 1
    }

    fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *self.queued.borrow_mut())
    }

    fn fail_all(&self, error: &Error) -> usize {
        let queued = self.take().into_iter();
        fail_all(queued.map(|q| Done::new(&q.frame, q.reply)), error)
    }

    fn report_written(&self, bytes: usize) -> bool {
        self.written.set(self.written.get() + bytes);
        self.session_waits.get()
    }
}

/// The way between a session and its codec actor, shared by both through an `Rc`.
///
/// It holds the codec's own address, for the wake-up. The codec actor therefore never stops
/// because its addresses are gone; it always stops explicitly (socket done, `Abort`, write
/// error, or its session gone), and dropping its state then leaves the session as the only
/// owner. One allocation per session; empty between batches, so an idle session holds no
/// buffer here.
#[derive(Debug)]
pub(crate) struct CodecLink {
    codec: Addr<CodecActor>,
    handoff: Handoff,
    /// Masking for frames queued from now on.
    masking: Cell<bool>,
}

impl CodecLink {
    pub(crate) fn new(codec: Addr<CodecActor>, masking: bool) -> Self {
        Self {
            codec,
            handoff: Handoff::default(),
            masking: Cell::new(masking),
        }
    }

    // ----- the session's end

    /// The codec actor's address (for the pinger and ponger, and for `Abort`).
    pub(crate) fn addr(&self) -> &Addr<CodecActor> {
        &self.codec
    }

    /// Queues `frame` for writing; `reply` is answered once it is written or refused.
    pub(crate) fn write(&self, frame: OutFrame, reply: Option<Reply>) {
        let entry = Queued {
            frame,
            reply,
            masked: self.masking.get(),
        };
        if self.handoff.push(entry) {
            // A stopped codec drops this; the session then fails the queue itself.
            self.codec.do_send(Flush);
        }
    }

    /// Data payload bytes the codec wrote since the last call.
    pub(crate) fn take_written(&self) -> usize {
        self.handoff.written.replace(0)
    }

    /// Whether the session has messages waiting for room, so that every write is reported
    /// with a [`Written`](crate::messages::Written) message.
    pub(crate) fn set_session_waits(&self, waits: bool) {
        self.handoff.session_waits.set(waits);
    }

    /// Masking for frames queued from now on; the codec also uses it for the pinger's and
    /// the ponger's frames.
    pub(crate) fn set_masking(&self, masking: bool) {
        self.masking.set(masking);
        self.codec.do_send(SetMask(masking));
    }

    /// Tells the codec to shut the write side once everything queued is written.
    pub(crate) fn finish(&self) {
        self.codec.do_send(Finish);
    }

    /// Answers everything still queued with `error` (used by the codec when it stops, and
    /// by the session for what was queued after that); returns how many were data
    /// messages.
    pub(crate) fn fail_queued(&self, error: &Error) -> usize {
        self.handoff.fail_all(error)
    }

    // ----- the codec's end

    /// Everything queued so far, oldest first.
    pub(crate) fn take(&self) -> Vec<Queued> {
        self.handoff.take()
    }

    /// `bytes` of data payload were written. `true` when the session must be told now (it
    /// has messages waiting for room).
    pub(crate) fn report_written(&self, bytes: usize) -> bool {
        self.handoff.report_written(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Send;

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
