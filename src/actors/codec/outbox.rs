//! The codec actor's write queue: what waits to be encoded, and in which order.
//!
//! Control frames (Ping, Pong) go first, so they slip in between the fragments of a large
//! message; data messages and the Close frame keep their order, and a message is encoded
//! one fragment at a time, only as write batches have room. A sink's batch of data
//! messages is one entry, a run ([`OutFrame::Run`]), encoded message by message as if each
//! were queued on its own. Each entry remembers whether masking was on when it was
//! queued; its keys are drawn when it is encoded.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::actors::recycle::{self, recyclable};
use crate::error::Error;
use crate::messages::{OutFrame, Reply, Send};
use crate::proto::frame::MAX_HEADER_LEN;
use crate::proto::{header_len, write_frame, Deflater, OpCode, MAX_CONTROL_PAYLOAD, RSV1};

/// Most automatic Pongs kept waiting; beyond it the oldest is dropped (RFC 6455 §5.5.3
/// allows answering only the most recent Ping of a burst).
const MAX_PENDING_PONGS: usize = 32;

/// A frame queued for writing, with its sender's reply and the masking in force when it
/// was queued.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) frame: OutFrame,
    pub(crate) reply: Option<Reply>,
    pub(crate) masked: bool,
}

recyclable!(Queued, Done);

impl Queued {
    /// Length of the payload as given by the sender (for a Close frame, the most it can
    /// be).
    fn payload_len(&self) -> usize {
        match &self.frame {
            OutFrame::Data(message) => message.len(),
            OutFrame::Close(_) => MAX_CONTROL_PAYLOAD,
            OutFrame::Run { bytes, .. } => *bytes,
        }
    }

    /// How many frames or messages this entry holds: a run's messages, or one.
    fn count(&self) -> usize {
        match &self.frame {
            OutFrame::Run { messages, .. } => messages.len(),
            _ => 1,
        }
    }

    /// Whether this holds only Text and Binary messages.
    fn is_data_message(&self) -> bool {
        match &self.frame {
            OutFrame::Data(message) => message.is_data(),
            OutFrame::Run { .. } => true,
            OutFrame::Close(_) => false,
        }
    }
}

/// What compressing data messages takes: the compressor, and the compressed payload of
/// the message being encoded.
#[derive(Debug)]
struct Compression {
    deflater: Deflater,
    /// The front data message's compressed payload, once it starts to be encoded.
    front: Option<Bytes>,
}

/// Encodes data messages a frame at a time: how it frames them (fragment size,
/// compression) and how far the front data message is. A field of the [`Outbox`] beside
/// its queues, so that `fill` can encode the front entry while it borrows the queue.
#[derive(Debug, Default)]
struct MessageEncoder {
    /// Payload bytes of the front data message already encoded (its fragments so far).
    encoded: usize,
    /// Fragment payloads of at most this many bytes (0: never fragment).
    fragment_size: usize,
    /// Present when permessage-deflate was negotiated. Boxed: most sessions never
    /// compress, and an idle one should not carry the compressor's 150 bytes inline.
    compression: Option<Box<Compression>>,
}

impl MessageEncoder {
    /// Encodes the next frame of `message` into `dst`: all of it, or its next fragment
    /// (compressed first, if compression is on). `true` once its last frame is in.
    fn encode(&mut self, dst: &mut BytesMut, message: &Send, key: Option<[u8; 4]>) -> bool {
        let (opcode, raw) = match message {
            Send::Text(text) => (OpCode::Text, &text.as_bytes()[..]),
            Send::Binary(bytes) | Send::Ping(bytes) | Send::Pong(bytes) => {
                (OpCode::Binary, &bytes[..])
            }
        };
        let start = self.encoded;
        let compressed = match self.compression.as_deref_mut() {
            Some(c) => Some(
                &*c.front
                    .get_or_insert_with(|| Bytes::from(c.deflater.compress(raw))),
            ),
            None => None,
        };
        let payload = compressed.map_or(raw, |bytes| &bytes[..]);
        let end = match self.fragment_size {
            0 => payload.len(),
            size => (start + size).min(payload.len()),
        };
        let (opcode, rsv) = match (start, compressed) {
            (0, Some(_)) => (opcode, RSV1),
            (0, None) => (opcode, 0),
            _ => (OpCode::Continuation, 0),
        };
        let fin = end == payload.len();
        write_frame(dst, opcode, fin, rsv, &payload[start..end], key);
        self.encoded = end;
        fin
    }

    /// The front data message's payload bytes (compressed, once its encoding began) and
    /// how many of them are encoded, given its uncompressed `message_len`.
    fn front_progress(&self, message_len: usize) -> (usize, usize) {
        let payload = self
            .compression
            .as_ref()
            .and_then(|c| c.front.as_ref())
            .map_or(message_len, Bytes::len);
        (payload, self.encoded)
    }

    /// Forgets the progress: the message is fully encoded, or left the queue.
    fn reset(&mut self) {
        self.encoded = 0;
        if let Some(compression) = self.compression.as_deref_mut() {
            compression.front = None;
        }
    }
}

/// Appends `entry` to `queue`, first taking an allocation from the thread's shelf if the
/// queue has none (see [`Outbox::release_if_empty`]).
fn push_stocked(queue: &mut VecDeque<Queued>, entry: Queued) {
    if queue.capacity() == 0 {
        *queue = VecDeque::from(recycle::take());
    }
    queue.push_back(entry);
}

/// Encoded frames (or messages) waiting for their write to finish: one with a reply, or a
/// run of them that nobody waits for, kept as one entry (see [`Done::push_onto`]).
#[derive(Debug)]
pub(crate) struct Done {
    reply: Option<Reply>,
    /// Payload bytes of the Text and Binary messages covered.
    data_bytes: usize,
    /// How many Text and Binary messages are covered.
    data_messages: usize,
}

impl Done {
    /// The promise to the sender of `frame`, to be kept once it is written or refused.
    fn new(frame: &OutFrame, reply: Option<Reply>) -> Self {
        let (data_bytes, data_messages) = match frame {
            OutFrame::Data(message) if message.is_data() => (message.len(), 1),
            OutFrame::Run { messages, bytes } => (*bytes, messages.len()),
            _ => (0, 0),
        };
        Self {
            reply,
            data_bytes,
            data_messages,
        }
    }

    /// Nothing done yet: no reply, no data. What a run's messages add up to in one batch.
    fn nothing() -> Self {
        Self {
            reply: None,
            data_bytes: 0,
            data_messages: 0,
        }
    }

    /// Appends this to `done`, in order. Without a reply it joins a last entry that has none
    /// either: the messages of a batch that only its last one answers for then cost one
    /// entry to complete, not one each.
    pub(crate) fn push_onto(self, done: &mut Vec<Done>) {
        if self.reply.is_none() {
            if let Some(last) = done.last_mut().filter(|last| last.reply.is_none()) {
                last.data_bytes += self.data_bytes;
                last.data_messages += self.data_messages;
                return;
            }
        }
        done.push(self);
    }

    /// Tells the sender how the write went; returns the data payload bytes it covered.
    pub(crate) fn complete(self, result: Result<(), Error>) -> usize {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
        self.data_bytes
    }

    /// How many data messages this covers (for counting what was never written).
    pub(crate) fn data_messages(&self) -> usize {
        self.data_messages
    }
}

impl From<Queued> for Done {
    fn from(entry: Queued) -> Self {
        Done::new(&entry.frame, entry.reply)
    }
}

/// The write queue.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    control: VecDeque<Queued>,
    data: VecDeque<Queued>,
    encoder: MessageEncoder,
    /// When the front of `data` is a run: how many of its messages are fully encoded.
    front_run_done: usize,
    /// Frames and messages waiting to be encoded, a run counted as its messages.
    queued: usize,
    /// Payload bytes of everything queued, each entry counted whole until it leaves the
    /// queue (see [`Queued::payload_len`]).
    payload_bytes: usize,
    /// A Close frame was queued: nothing more is accepted.
    close_queued: bool,
    /// The Close frame was encoded: nothing more is written.
    close_encoded: bool,
}

impl Outbox {
    /// An empty queue fragmenting messages at `fragment_size` bytes (0: never), and
    /// compressing them with `deflater` when given.
    pub(crate) fn new(fragment_size: usize, deflater: Option<Deflater>) -> Self {
        Self {
            encoder: MessageEncoder {
                encoded: 0,
                fragment_size,
                compression: deflater.map(|deflater| {
                    Box::new(Compression {
                        deflater,
                        front: None,
                    })
                }),
            },
            ..Self::default()
        }
    }

    /// How many frames and messages wait to be encoded.
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    /// Whether anything waits to be encoded.
    pub(crate) fn is_empty(&self) -> bool {
        self.control.is_empty() && (self.data.is_empty() || self.close_encoded)
    }

    /// Queues a frame; after a Close frame, answers its sender with [`Error::Closed`].
    pub(crate) fn push(&mut self, entry: Queued) {
        if self.close_queued {
            if let Some(reply) = entry.reply {
                let _ = reply.send(Err(Error::Closed));
            }
            return;
        }
        self.payload_bytes = self.payload_bytes.saturating_add(entry.payload_len());
        self.queued += entry.count();
        match &entry.frame {
            OutFrame::Data(Send::Ping(_)) => push_stocked(&mut self.control, entry),
            OutFrame::Data(Send::Pong(_)) => {
                if entry.reply.is_none() {
                    self.drop_oldest_pong_if_full();
                }
                push_stocked(&mut self.control, entry);
            }
            OutFrame::Data(_) | OutFrame::Run { .. } => push_stocked(&mut self.data, entry),
            OutFrame::Close(_) => {
                self.close_queued = true;
                push_stocked(&mut self.data, entry);
            }
        }
    }

    /// Queues every one of `entries`, in order, as [`push`](Self::push) would, and returns
    /// the emptied vector (for [`recycle`]).
    ///
    /// The common case, a run of data messages while no message is queued, takes the
    /// vector's allocation whole as the data queue instead of moving entry by entry.
    pub(crate) fn push_all(&mut self, mut entries: Vec<Queued>) -> Vec<Queued> {
        let whole = !self.close_queued
            && self.data.is_empty()
            && entries.iter().all(Queued::is_data_message);
        if whole {
            let (bytes, count) = entries.iter().fold((0, 0), |(bytes, count), e| {
                (
                    usize::saturating_add(bytes, e.payload_len()),
                    count + e.count(),
                )
            });
            self.payload_bytes = self.payload_bytes.saturating_add(bytes);
            self.queued += count;
            self.encoder.reset();
            self.front_run_done = 0;
            return Vec::from(std::mem::replace(&mut self.data, VecDeque::from(entries)));
        }
        for entry in entries.drain(..) {
            self.push(entry);
        }
        entries
    }

    fn drop_oldest_pong_if_full(&mut self) {
        let is_auto_pong =
            |e: &Queued| matches!(e.frame, OutFrame::Data(Send::Pong(_))) && e.reply.is_none();
        if self.control.iter().filter(|e| is_auto_pong(e)).count() >= MAX_PENDING_PONGS {
            if let Some(oldest) = self.control.iter().position(is_auto_pong) {
                if let Some(dropped) = self.control.remove(oldest) {
                    self.payload_bytes = self.payload_bytes.saturating_sub(dropped.payload_len());
                    self.queued -= 1;
                }
            }
        }
    }

    /// Takes `entry` (a frame or a message, not a run) out of the counts; it has left the
    /// queue.
    fn left(&mut self, entry: Queued) -> Done {
        self.payload_bytes = self.payload_bytes.saturating_sub(entry.payload_len());
        self.queued -= 1;
        Done::from(entry)
    }

    /// Encodes into `dst` until it holds about `limit` bytes: all control frames first,
    /// then data fragments in order. `next_key` draws a mask key for each masked frame.
    /// Every frame or message fully encoded is added to `done`.
    pub(crate) fn fill(
        &mut self,
        dst: &mut BytesMut,
        limit: usize,
        next_key: &mut impl FnMut() -> [u8; 4],
        done: &mut Vec<Done>,
    ) {
        while let Some(entry) = self.control.pop_front() {
            if self.close_encoded {
                self.left(entry).complete(Err(Error::Closed));
                continue;
            }
            let (opcode, payload) = match &entry.frame {
                OutFrame::Data(Send::Ping(p)) => (OpCode::Ping, p),
                OutFrame::Data(Send::Pong(p)) => (OpCode::Pong, p),
                _ => continue,
            };
            let key = entry.masked.then(&mut *next_key);
            write_frame(dst, opcode, true, 0, payload, key);
            self.left(entry).push_onto(done);
        }
        while dst.len() < limit && !self.close_encoded {
            let Some(entry) = self.data.front() else {
                break;
            };
            let finished = match &entry.frame {
                OutFrame::Close(status) => {
                    let key = entry.masked.then(&mut *next_key);
                    let payload = status.as_ref().map(|s| s.to_payload()).unwrap_or_default();
                    write_frame(dst, OpCode::Close, true, 0, &payload, key);
                    self.close_encoded = true;
                    true
                }
                OutFrame::Data(message) => {
                    let key = entry.masked.then(&mut *next_key);
                    self.encoder.encode(dst, message, key)
                }
                OutFrame::Run { messages, .. } => {
                    // Message by message, as if each were an entry of its own; what was
                    // encoded counts as done in this batch even if the run goes on.
                    let mut encoded = Done::nothing();
                    while let Some(message) = messages.get(self.front_run_done) {
                        let key = entry.masked.then(&mut *next_key);
                        if !self.encoder.encode(dst, message, key) {
                            break;
                        }
                        self.encoder.reset();
                        self.front_run_done += 1;
                        self.queued -= 1;
                        encoded.data_bytes += message.len();
                        encoded.data_messages += 1;
                        if dst.len() >= limit {
                            break;
                        }
                    }
                    if self.front_run_done < messages.len() {
                        // Out of room, or a fragment of the next message went out.
                        if encoded.data_messages > 0 {
                            encoded.push_onto(done);
                        }
                        continue;
                    }
                    // The whole run is encoded: it leaves, and its reply goes with the rest.
                    if let Some(run) = self.data.pop_front() {
                        self.payload_bytes = self.payload_bytes.saturating_sub(run.payload_len());
                        self.front_run_done = 0;
                        encoded.reply = run.reply;
                        if let OutFrame::Run { messages, .. } = run.frame {
                            recycle::give(messages);
                        }
                    }
                    encoded.push_onto(done);
                    continue;
                }
            };
            if finished {
                self.encoder.reset();
                if let Some(entry) = self.data.pop_front() {
                    self.left(entry).push_onto(done);
                }
            }
        }
    }

    /// About how many bytes the next [`fill`](Self::fill) with this `limit` encodes, so
    /// the write buffer can be sized once: exact for uncompressed data, while a Close
    /// frame counts as its largest size and a message still to be compressed as its
    /// uncompressed size.
    ///
    /// When everything queued fits under `limit` by [`encoded_bound`](Self::encoded_bound)
    /// (the usual batch of small messages), that bound is the hint, at no cost; the queue
    /// is walked only for a batch that fills up to the limit.
    pub(crate) fn batch_len_hint(&self, limit: usize) -> usize {
        let bound = self.encoded_bound();
        if bound < limit {
            return bound;
        }
        let framed = |payload: usize, masked: bool| payload + header_len(payload as u64, masked);
        let mut total: usize = self
            .control
            .iter()
            .map(|e| framed(e.payload_len(), e.masked))
            .sum();
        // Adds the frames of one message's payload, of which `encoded` bytes went out.
        let add_message = |total: &mut usize, payload: usize, encoded: usize, masked| {
            let mut remaining = payload - encoded;
            loop {
                let frame = match self.encoder.fragment_size {
                    0 => remaining,
                    size => remaining.min(size),
                };
                *total += framed(frame, masked);
                remaining -= frame;
                if remaining == 0 || *total >= limit {
                    break;
                }
            }
        };
        for (i, entry) in self.data.iter().enumerate() {
            if total >= limit {
                break;
            }
            match &entry.frame {
                OutFrame::Close(_) => {
                    total += framed(entry.payload_len(), entry.masked);
                    break; // nothing is written after it
                }
                OutFrame::Data(message) => {
                    let (payload, encoded) = match i {
                        0 => self.encoder.front_progress(message.len()),
                        _ => (message.len(), 0),
                    };
                    add_message(&mut total, payload, encoded, entry.masked);
                }
                OutFrame::Run { messages, .. } => {
                    let skip = if i == 0 { self.front_run_done } else { 0 };
                    for (j, message) in messages.iter().enumerate().skip(skip) {
                        if total >= limit {
                            break;
                        }
                        let (payload, encoded) = match (i, j == skip) {
                            (0, true) => self.encoder.front_progress(message.len()),
                            _ => (message.len(), 0),
                        };
                        add_message(&mut total, payload, encoded, entry.masked);
                    }
                }
            }
        }
        total
    }

    /// Whether what is queued encodes to less than `limit` bytes, by
    /// [`encoded_bound`](Self::encoded_bound).
    pub(crate) fn fits_under(&self, limit: usize) -> bool {
        self.encoded_bound() < limit
    }

    /// At least as many bytes as everything queued encodes to, by a bound that costs
    /// nothing to compute: every payload counted whole and uncompressed, and the largest
    /// header for each frame it can take.
    fn encoded_bound(&self) -> usize {
        let frames = match self.encoder.fragment_size {
            0 => self.len(),
            size => self.len().saturating_add(self.payload_bytes / size),
        };
        let headers = frames.saturating_mul(MAX_HEADER_LEN);
        self.payload_bytes.saturating_add(headers)
    }

    /// Puts the queues' memory back on the thread's shelf once both are empty, so that a
    /// session between messages holds none (a queue keeps its capacity otherwise: about
    /// 0.4 KiB each) and the next batch of any session on this thread reuses it.
    pub(crate) fn release_if_empty(&mut self) {
        if self.control.is_empty() && self.data.is_empty() {
            recycle::give(Vec::from(std::mem::take(&mut self.control)));
            recycle::give(Vec::from(std::mem::take(&mut self.data)));
        }
    }

    /// Fails everything still queued with `error`; returns how many data messages that was.
    pub(crate) fn fail_all(&mut self, error: &Error) -> usize {
        self.payload_bytes = 0;
        self.queued = 0;
        self.encoder.reset();
        // The front run's messages encoded so far were counted as done already.
        let encoded = std::mem::take(&mut self.front_run_done);
        let queued = self.control.drain(..).chain(self.data.drain(..));
        fail_all(queued.map(Done::from), error) - encoded
    }
}

/// Answers every one of `done` with `error`; returns how many were data messages.
pub(crate) fn fail_all(done: impl IntoIterator<Item = Done>, error: &Error) -> usize {
    let mut data_messages = 0;
    for d in done {
        data_messages += d.data_messages();
        d.complete(Err(error.clone()));
    }
    data_messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CloseFrame, Message, Receiver, ReceiverLimits};
    use bytes::Bytes;

    fn entry(frame: OutFrame, reply: Option<Reply>, masked: bool) -> Queued {
        Queued {
            frame,
            reply,
            masked,
        }
    }

    fn decode_all(mut wire: BytesMut) -> Vec<Message> {
        let mut receiver = Receiver::new(ReceiverLimits {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            allowed_rsv: 0,
        });
        let mut out = Vec::new();
        while let Some(m) = receiver.poll(&mut wire).unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn control_frames_go_out_between_fragments() {
        let mut outbox = Outbox::new(4, None);
        outbox.push(entry(
            OutFrame::Data(Send::binary(vec![1u8; 12])),
            None,
            false,
        ));
        let mut wire = BytesMut::new();
        let mut done = Vec::new();
        outbox.fill(&mut wire, 1, &mut || [0; 4], &mut done); // one fragment only
        outbox.push(entry(
            OutFrame::Data(Send::Ping(Bytes::from_static(b"p"))),
            None,
            false,
        ));
        outbox.fill(&mut wire, 1 << 10, &mut || [0; 4], &mut done);
        assert!(outbox.is_empty());
        assert_eq!(
            decode_all(wire),
            vec![
                Message::Ping(Bytes::from_static(b"p")),
                Message::Binary(Bytes::from(vec![1u8; 12]))
            ]
        );
        let data_messages: usize = done.iter().map(Done::data_messages).sum();
        assert_eq!(data_messages, 1, "the Ping is done too, and is not data");
    }

    #[test]
    fn frames_nobody_waits_for_share_one_done_entry_and_replies_keep_their_order() {
        let mut outbox = Outbox::new(0, None);
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let sizes = [3usize, 5, 7, 11, 13, 17];
        for (i, len) in sizes.into_iter().enumerate() {
            // Only the fourth message is answered, as a sink's batch answers for its last.
            let reply = if i == 3 { tx.take() } else { None };
            outbox.push(entry(
                OutFrame::Data(Send::binary(vec![0u8; len])),
                reply,
                true,
            ));
        }
        outbox.push(entry(
            OutFrame::Data(Send::Ping(Bytes::from_static(b"p"))),
            None,
            true,
        ));
        let (mut wire, mut done) = (BytesMut::new(), Vec::new());
        outbox.fill(&mut wire, usize::MAX, &mut || [1, 2, 3, 4], &mut done);
        assert_eq!(
            done.len(),
            3,
            "the Ping and three messages, one answered, two more"
        );
        assert!(done[1].reply.is_some() && done[0].reply.is_none());
        let counts: Vec<usize> = done.iter().map(Done::data_messages).collect();
        assert_eq!(counts, vec![3, 1, 2]);
        assert!(rx.try_recv().is_err(), "nothing answered before the write");
        let bytes: usize = done.drain(..).map(|d| d.complete(Ok(()))).sum();
        assert_eq!(bytes, sizes.iter().sum::<usize>());
        assert!(matches!(rx.try_recv(), Ok(Ok(()))));
    }

    #[test]
    fn the_queues_let_go_of_their_memory_only_once_both_are_empty() {
        let mut outbox = Outbox::new(4, None);
        outbox.push(entry(
            OutFrame::Data(Send::binary(vec![1u8; 12])),
            None,
            false,
        ));
        outbox.push(entry(OutFrame::Data(Send::Ping(Bytes::new())), None, false));
        let mut wire = BytesMut::new();
        outbox.fill(&mut wire, 1, &mut || [0; 4], &mut Vec::new()); // the ping fills the batch
        outbox.release_if_empty();
        assert!(
            outbox.data.capacity() > 0,
            "a message is still being encoded"
        );
        outbox.fill(&mut wire, 1 << 10, &mut || [0; 4], &mut Vec::new());
        assert!(outbox.control.capacity() > 0 && outbox.data.capacity() > 0);
        outbox.release_if_empty();
        assert_eq!((outbox.control.capacity(), outbox.data.capacity()), (0, 0));
    }

    #[test]
    fn nothing_is_accepted_after_close() {
        let mut outbox = Outbox::new(0, None);
        outbox.push(entry(
            OutFrame::Close(CloseFrame::new(1000, "").ok()),
            None,
            false,
        ));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        outbox.push(entry(OutFrame::Data(Send::text("late")), Some(tx), false));
        assert_eq!(rx.try_recv(), Ok(Err(Error::Closed)));
    }

    #[test]
    fn masking_is_the_one_in_force_when_queued() {
        let mut outbox = Outbox::new(0, None);
        outbox.push(entry(OutFrame::Data(Send::text("a")), None, true));
        outbox.push(entry(OutFrame::Data(Send::text("b")), None, false));
        let mut wire = BytesMut::new();
        outbox.fill(&mut wire, 1 << 10, &mut || [9, 9, 9, 9], &mut Vec::new());
        assert_eq!(wire[1] & 0x80, 0x80);
        // frame 1: 2 header + 4 key + 1 payload bytes; frame 2 starts at 7
        assert_eq!(wire[8] & 0x80, 0);
    }

    #[test]
    fn a_pong_burst_is_bounded() {
        let mut outbox = Outbox::new(0, None);
        for i in 0..100u8 {
            outbox.push(entry(
                OutFrame::Data(Send::Pong(Bytes::from(vec![i]))),
                None,
                false,
            ));
        }
        let mut wire = BytesMut::new();
        outbox.fill(&mut wire, 1 << 10, &mut || [0; 4], &mut Vec::new());
        let pongs = decode_all(wire);
        assert_eq!(pongs.len(), MAX_PENDING_PONGS);
        assert_eq!(pongs.last(), Some(&Message::Pong(Bytes::from(vec![99]))));
    }

    #[test]
    fn the_batch_hint_covers_what_fill_writes() {
        for (fragment_size, limit) in [(0, 1 << 10), (100, 250), (100, 1 << 20), (0, 1)] {
            let mut outbox = Outbox::new(fragment_size, None);
            outbox.push(entry(
                OutFrame::Data(Send::Ping(Bytes::from_static(b"p"))),
                None,
                true,
            ));
            for len in [10, 300, 70_000] {
                outbox.push(entry(
                    OutFrame::Data(Send::binary(vec![1u8; len])),
                    None,
                    true,
                ));
            }
            outbox.push(entry(
                OutFrame::Close(CloseFrame::new(1000, "bye").ok()),
                None,
                true,
            ));
            while !outbox.is_empty() {
                // When everything fits, the hint is the bound: the largest header per frame.
                let frames = match fragment_size {
                    0 => outbox.len(),
                    size => outbox.len() + outbox.payload_bytes / size,
                };
                let header_slack = frames * MAX_HEADER_LEN;
                let close_slack = MAX_CONTROL_PAYLOAD - 5; // the Close payload is 5 bytes
                let hint = outbox.batch_len_hint(limit);
                let mut wire = BytesMut::new();
                outbox.fill(&mut wire, limit, &mut || [1, 2, 3, 4], &mut Vec::new());
                assert!(hint >= wire.len(), "hint {hint} < {}", wire.len());
                assert!(
                    hint <= wire.len() + close_slack + header_slack,
                    "hint {hint} ≫ {} ({fragment_size}, {limit})",
                    wire.len()
                );
            }
        }
    }

    /// Batches of every shape the session hands over, and what must already be queued.
    fn batches() -> Vec<(Vec<Queued>, Vec<Queued>)> {
        let text = |t: &str| entry(OutFrame::Data(Send::text(t.to_string())), None, true);
        let ping = || {
            entry(
                OutFrame::Data(Send::Ping(Bytes::from_static(b"p"))),
                None,
                true,
            )
        };
        let close = || entry(OutFrame::Close(CloseFrame::new(1000, "").ok()), None, true);
        vec![
            (vec![], vec![text("a"), text("b"), text("c")]),
            (vec![text("x")], vec![text("a"), text("b")]),
            (vec![], vec![text("a"), ping(), text("b")]),
            (vec![], vec![text("a"), close(), text("late")]),
            (vec![close()], vec![text("late"), text("later")]),
            (vec![ping()], vec![text("a")]),
            (vec![], vec![]),
            (vec![], vec![run_of(&[1, 2], None), text("b")]),
            (vec![text("x")], vec![run_of(&[3], None), ping()]),
            (vec![close()], vec![run_of(&[4, 5], None)]),
        ]
    }

    #[test]
    fn push_all_queues_what_push_would_queue_one_by_one() {
        for fragment_size in [0, 1] {
            for ((before, batch), (before_too, batch_too)) in batches().into_iter().zip(batches()) {
                let mut whole = Outbox::new(fragment_size, None);
                let mut one_by_one = Outbox::new(fragment_size, None);
                for e in before {
                    whole.push(e);
                }
                for e in before_too {
                    one_by_one.push(e);
                }
                let emptied = whole.push_all(batch);
                assert!(emptied.is_empty());
                for e in batch_too {
                    one_by_one.push(e);
                }
                assert_eq!(whole.payload_bytes, one_by_one.payload_bytes);
                let (mut wire, mut wire_too) = (BytesMut::new(), BytesMut::new());
                let (mut done, mut done_too) = (Vec::new(), Vec::new());
                whole.fill(&mut wire, usize::MAX, &mut || [1, 2, 3, 4], &mut done);
                one_by_one.fill(
                    &mut wire_too,
                    usize::MAX,
                    &mut || [1, 2, 3, 4],
                    &mut done_too,
                );
                assert_eq!(wire, wire_too);
                assert_eq!(done.len(), done_too.len());
                assert_eq!(
                    whole.payload_bytes, 0,
                    "everything encoded has left the count"
                );
            }
        }
    }

    #[test]
    fn fits_under_never_promises_room_that_is_not_there() {
        for fragment_size in [0, 1, 7, 100] {
            let mut outbox = Outbox::new(fragment_size, None);
            outbox.push(entry(
                OutFrame::Data(Send::Ping(Bytes::from_static(b"p"))),
                None,
                true,
            ));
            for len in [0, 10, 125, 126, 300, 70_000] {
                outbox.push(entry(
                    OutFrame::Data(Send::binary(vec![1u8; len])),
                    None,
                    true,
                ));
            }
            outbox.push(entry(OutFrame::Close(None), None, true));
            let fits: Vec<usize> = (0..200_000)
                .step_by(997)
                .filter(|&limit| outbox.fits_under(limit))
                .collect();
            assert!(outbox.fits_under(usize::MAX));
            let mut wire = BytesMut::new();
            outbox.fill(&mut wire, usize::MAX, &mut || [1, 2, 3, 4], &mut Vec::new());
            assert!(
                fits.iter().all(|&limit| wire.len() < limit),
                "{fragment_size}"
            );
            assert!(!outbox.fits_under(0) && outbox.fits_under(usize::MAX));
        }
    }

    #[test]
    fn compressed_messages_are_encoded_fragment_by_fragment_and_inflate_to_what_was_sent() {
        use crate::proto::{DeflateParams, Inflater};
        let params = DeflateParams {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
        };
        let mut outbox = Outbox::new(7, Some(Deflater::new(&params, 6)));
        let sent: Vec<String> = (0..3).map(|i| format!("message {i} ").repeat(20)).collect();
        for text in &sent {
            outbox.push(entry(OutFrame::Data(Send::text(text.clone())), None, false));
        }
        let (mut wire, mut done) = (BytesMut::new(), Vec::new());
        let mut batches = 0;
        while !outbox.is_empty() {
            let hint = outbox.batch_len_hint(1);
            let before = wire.len();
            outbox.fill(&mut wire, before + 1, &mut || [0; 4], &mut done);
            assert!(
                wire.len() - before <= hint,
                "one fragment per batch, within the hint"
            );
            batches += 1;
        }
        assert!(batches > sent.len(), "compressed messages were fragmented");
        let data_messages: usize = done.iter().map(Done::data_messages).sum();
        assert_eq!(data_messages, sent.len());
        let limits = ReceiverLimits {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            allowed_rsv: 0,
        };
        let mut receiver = Receiver::with_inflater(limits, Inflater::new(&params));
        let mut received = Vec::new();
        while let Some(message) = receiver.poll(&mut wire).unwrap() {
            received.push(message);
        }
        let expected: Vec<Message> = sent.into_iter().map(|t| Message::Text(t.into())).collect();
        assert_eq!(received, expected);
        assert_eq!(outbox.payload_bytes, 0);
    }

    fn run_of(lens: &[usize], reply: Option<Reply>) -> Queued {
        let messages: Vec<Send> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| match i % 2 {
                0 => Send::binary(vec![i as u8; len]),
                _ => Send::text("t".repeat(len)),
            })
            .collect();
        entry(
            OutFrame::Run {
                messages,
                bytes: lens.iter().sum(),
            },
            reply,
            true,
        )
    }

    #[test]
    fn a_run_is_written_as_its_messages_queued_one_by_one_would_be() {
        let lens = [0, 5, 130, 7, 70_000, 3, 64, 65];
        let params = crate::proto::DeflateParams {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
        };
        for compress in [false, true] {
            for (fragment_size, limit) in [(0, usize::MAX), (0, 100), (7, 50), (1000, 3000)] {
                let deflater = || compress.then(|| Deflater::new(&params, 6));
                let (mut runs, mut singles) = (
                    Outbox::new(fragment_size, deflater()),
                    Outbox::new(fragment_size, deflater()),
                );
                let (tx, mut rx) = tokio::sync::oneshot::channel();
                runs.push(run_of(&lens, Some(tx)));
                let OutFrame::Run { messages, .. } = run_of(&lens, None).frame else {
                    unreachable!("run_of makes a run")
                };
                for message in messages {
                    singles.push(entry(OutFrame::Data(message), None, true));
                }
                assert_eq!(runs.len(), singles.len());
                assert_eq!(runs.payload_bytes, singles.payload_bytes);
                let (mut wire, mut wire_too) = (BytesMut::new(), BytesMut::new());
                let (mut done, mut done_too) = (Vec::new(), Vec::new());
                let mut fills = 0;
                while !singles.is_empty() {
                    assert!(rx.try_recv().is_err(), "answered before its last message");
                    if fills == 1 {
                        // A control frame slips in between, in both.
                        let ping = || Send::Ping(Bytes::from_static(b"p"));
                        runs.push(entry(OutFrame::Data(ping()), None, true));
                        singles.push(entry(OutFrame::Data(ping()), None, true));
                    }
                    let start = wire.len();
                    let hint = runs.batch_len_hint(limit);
                    runs.fill(
                        &mut wire,
                        start.saturating_add(limit),
                        &mut || [9; 4],
                        &mut done,
                    );
                    // (A message still to be compressed counts as its uncompressed size,
                    // which deflate can exceed by a few bytes: the buffer grows then.)
                    assert!(
                        compress || wire.len() - start <= hint,
                        "hint {hint} {} {compress} {fragment_size} {limit}",
                        wire.len() - start
                    );
                    let start_too = wire_too.len();
                    singles.fill(
                        &mut wire_too,
                        start_too.saturating_add(limit),
                        &mut || [9; 4],
                        &mut done_too,
                    );
                    assert_eq!(wire, wire_too, "{compress} {fragment_size} {limit}");
                    assert_eq!(runs.len(), singles.len());
                    let count =
                        |done: &[Done]| -> usize { done.iter().map(Done::data_messages).sum() };
                    assert_eq!(count(&done), count(&done_too));
                    let bytes =
                        |done: &[Done]| -> usize { done.iter().map(|d| d.data_bytes).sum() };
                    assert_eq!(bytes(&done), bytes(&done_too));
                    // Completing what was done so far answers the run only at its end.
                    for d in done.drain(..) {
                        d.complete(Ok(()));
                    }
                    done_too.clear();
                    fills += 1;
                }
                assert!(runs.is_empty());
                assert!(
                    fills > 1 || compress || limit == usize::MAX,
                    "several batches"
                );
                assert!(matches!(rx.try_recv(), Ok(Ok(()))));
                assert_eq!((runs.payload_bytes, runs.len()), (0, 0));
            }
        }
    }

    #[test]
    fn failing_in_the_middle_of_a_run_counts_only_what_was_not_encoded() {
        let mut outbox = Outbox::new(0, None);
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        outbox.push(run_of(&[10, 10, 10, 10, 10], Some(tx)));
        let (mut wire, mut done) = (BytesMut::new(), Vec::new());
        outbox.fill(&mut wire, 20, &mut || [1, 2, 3, 4], &mut done);
        let encoded: usize = done.iter().map(Done::data_messages).sum();
        assert_eq!(encoded, 2);
        assert_eq!(outbox.len(), 3);
        assert_eq!(outbox.fail_all(&Error::Closed), 3);
        assert!(matches!(rx.try_recv(), Ok(Err(Error::Closed))));
        assert!(outbox.is_empty());
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn fail_all_counts_data_messages() {
        let mut outbox = Outbox::new(0, None);
        outbox.push(entry(OutFrame::Data(Send::text("a")), None, true));
        outbox.push(entry(OutFrame::Data(Send::Ping(Bytes::new())), None, true));
        outbox.push(entry(
            OutFrame::Data(Send::binary(Bytes::new())),
            None,
            true,
        ));
        assert_eq!(outbox.fail_all(&Error::Closed), 2);
        assert!(outbox.is_empty());
    }
}
