//! The inbound bound of a stream session: payload bytes delivered to an
//! [`IncomingStream`](crate::IncomingStream) and not yet taken from it.
//!
//! The session adds what it delivers, the stream subtracts what its consumer takes, and
//! the codec's reader looks before each socket read: over the bound it stops reading (TCP
//! flow control then slows the peer) until the consumer has taken the backlog below half
//! the bound, when the stream wakes it. No mailbox message is involved, so the hot path
//! pays two atomic additions per batch.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Context;

use futures::task::AtomicWaker;

use crate::messages::Incoming;
use crate::proto::Message;

/// Shared between the session (producer), the stream (consumer) and the codec's reader.
#[derive(Debug)]
pub(crate) struct Backlog {
    bytes: AtomicUsize,
    bound: usize,
    reader_paused: AtomicBool,
    reader: AtomicWaker,
    /// The session is closing: the reader must reach the peer's Close whatever the backlog.
    released: AtomicBool,
}

impl Backlog {
    /// A backlog that pauses reading above `bound` bytes.
    pub(crate) fn new(bound: usize) -> Arc<Self> {
        Arc::new(Self {
            bytes: AtomicUsize::new(0),
            bound,
            reader_paused: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            released: AtomicBool::new(false),
        })
    }

    /// Payload bytes an event carries against the bound.
    pub(crate) fn weight(event: &Incoming) -> usize {
        match event {
            Incoming::Text(text) => text.len(),
            Incoming::Binary(bytes) | Incoming::Ping(bytes) | Incoming::Pong(bytes) => bytes.len(),
            Incoming::Closed(_) => 0,
        }
    }

    /// Payload bytes a received message carries against the bound: what [`weight`]
    /// gives for the event it becomes.
    ///
    /// [`weight`]: Self::weight
    pub(crate) fn message_weight(message: &Message) -> usize {
        match message {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
            Message::Close(_) => 0,
        }
    }

    /// The session delivered `bytes`.
    pub(crate) fn delivered(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    /// The consumer took `bytes`; wakes a paused reader once the backlog is below half the
    /// bound.
    pub(crate) fn taken(&self, bytes: usize) {
        let left = self
            .bytes
            .fetch_sub(bytes, Ordering::SeqCst)
            .saturating_sub(bytes);
        // A plain load first: the reader is rarely paused, and the swap is another locked
        // instruction per message. `SeqCst` pairs it with `must_wait`'s store and load
        // (either this sees the flag, or `must_wait` sees the bytes taken).
        if left <= self.bound / 2
            && self.reader_paused.load(Ordering::SeqCst)
            && self.reader_paused.swap(false, Ordering::AcqRel)
        {
            self.reader.wake();
        }
    }

    /// Bytes delivered and not yet taken.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Lifts the bound for good (the session is closing) and wakes a paused reader.
    pub(crate) fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        if self.reader_paused.swap(false, Ordering::SeqCst) {
            self.reader.wake();
        }
    }

    /// For the reader, before a socket read: `true` (and the reader's waker registered) when
    /// it must wait for the consumer.
    pub(crate) fn must_wait(&self, cx: &mut Context<'_>) -> bool {
        if self.bytes() <= self.bound || self.released.load(Ordering::Acquire) {
            return false;
        }
        self.reader.register(cx.waker());
        self.reader_paused.store(true, Ordering::SeqCst);
        // The consumer (or a close) may have come between the check and the flag.
        let caught_up = self.bytes.load(Ordering::SeqCst) <= self.bound / 2
            || self.released.load(Ordering::SeqCst);
        !(caught_up && self.reader_paused.swap(false, Ordering::AcqRel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::session::incoming_of;
    use bytes::Bytes;
    use futures::task::noop_waker_ref;

    #[test]
    fn a_message_weighs_what_its_event_weighs() {
        let payload = Bytes::from_static(b"seven b");
        for message in [
            Message::Text("five!".into()),
            Message::Binary(payload.clone()),
            Message::Ping(payload.clone()),
            Message::Pong(payload),
        ] {
            let weight = Backlog::message_weight(&message);
            let event = incoming_of(message).expect("not a Close");
            assert_eq!(weight, Backlog::weight(&event));
            assert!(weight > 0);
        }
        assert_eq!(Backlog::message_weight(&Message::Close(None)), 0);
    }

    #[test]
    fn the_reader_waits_above_the_bound_and_resumes_below_half() {
        let backlog = Backlog::new(100);
        let mut cx = Context::from_waker(noop_waker_ref());
        backlog.delivered(100);
        assert!(!backlog.must_wait(&mut cx));
        backlog.delivered(1);
        assert!(backlog.must_wait(&mut cx));
        backlog.taken(30); // 71 left: still over half
        assert!(backlog.reader_paused.load(Ordering::Acquire));
        backlog.taken(30); // 41 left
        assert!(!backlog.reader_paused.load(Ordering::Acquire));
        assert!(!backlog.must_wait(&mut cx));
        assert_eq!(backlog.bytes(), 41);
    }

    #[test]
    fn a_closing_session_reads_whatever_the_backlog() {
        let backlog = Backlog::new(10);
        let mut cx = Context::from_waker(noop_waker_ref());
        backlog.delivered(50);
        assert!(backlog.must_wait(&mut cx));
        backlog.release();
        assert!(!backlog.reader_paused.load(Ordering::Acquire));
        assert!(!backlog.must_wait(&mut cx));
    }
}
