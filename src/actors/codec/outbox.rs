//! The codec actor's write queue: what waits to be encoded, and in which order.
//!
//! Control frames (Ping, Pong) go first, so they slip in between the fragments of a large
//! message; data messages and the Close frame keep their order, and a message is encoded
//! one fragment at a time, only as write batches have room. Each entry remembers whether
//! masking was on when it was queued; its keys are drawn when it is encoded.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::actors::recycle::{self, recyclable};
use crate::error::Error;
use crate::messages::{OutFrame, Reply, Send};
use crate::proto::{header_len, write_frame, Deflater, OpCode, MAX_CONTROL_PAYLOAD, RSV1};

/// Most automatic Pongs kept waiting; beyond it the oldest is dropped (RFC 6455 §5.5.3
/// allows answering only the most recent Ping of a burst).
const MAX_PENDING_PONGS: usize = 32;

/// A frame waiting to be written, with the promise to its sender.
#[derive(Debug)]
struct Entry {
    frame: OutFrame,
    reply: Option<Reply>,
    masked: bool,
    /// Payload bytes of a data message already encoded (its fragments so far).
    encoded: usize,
    /// The compressed payload, once a compressed message starts to be encoded.
    compressed: Option<Bytes>,
}

recyclable!(Entry, Done);

/// Appends `entry` to `queue`, first taking an allocation from the thread's shelf if the
/// queue has none (see [`Outbox::release_if_empty`]).
fn push_stocked(queue: &mut VecDeque<Entry>, entry: Entry) {
    if queue.capacity() == 0 {
        *queue = VecDeque::from(recycle::take());
    }
    queue.push_back(entry);
}

/// An encoded frame (or message) waiting for its write to finish.
#[derive(Debug)]
pub(crate) struct Done {
    reply: Option<Reply>,
    /// Payload bytes of a data message; 0 for control frames.
    data_bytes: usize,
    /// Whether this is a Text or Binary message.
    is_data: bool,
}

impl Done {
    /// The promise to the sender of `frame`, to be kept once it is written or refused.
    pub(crate) fn new(frame: &OutFrame, reply: Option<Reply>) -> Self {
        let (data_bytes, is_data) = match frame {
            OutFrame::Data(message @ (Send::Text(_) | Send::Binary(_))) => (message.len(), true),
            _ => (0, false),
        };
        Self {
            reply,
            data_bytes,
            is_data,
        }
    }

    /// Tells the sender how the write went; returns the data payload bytes it covered.
    pub(crate) fn complete(self, result: Result<(), Error>) -> usize {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
        self.data_bytes
    }

    /// Whether this is a data message (for counting what was never written).
    pub(crate) fn is_data(&self) -> bool {
        self.is_data
    }
}

/// The write queue.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    control: VecDeque<Entry>,
    data: VecDeque<Entry>,
    /// A Close frame was queued: nothing more is accepted.
    close_queued: bool,
    /// The Close frame was encoded: nothing more is written.
    close_encoded: bool,
    fragment_size: usize,
    /// Compresses data messages when permessage-deflate was negotiated.
    deflater: Option<Deflater>,
}

impl Outbox {
    /// An empty queue fragmenting messages at `fragment_size` bytes (0: never), and
    /// compressing them with `deflater` when given.
    pub(crate) fn new(fragment_size: usize, deflater: Option<Deflater>) -> Self {
        Self {
            fragment_size,
            deflater,
            ..Self::default()
        }
    }

    /// How many frames and messages wait to be encoded.
    pub(crate) fn len(&self) -> usize {
        self.control.len() + self.data.len()
    }

    /// Whether anything waits to be encoded.
    pub(crate) fn is_empty(&self) -> bool {
        self.control.is_empty() && (self.data.is_empty() || self.close_encoded)
    }

    /// Queues a frame; after a Close frame, answers its sender with [`Error::Closed`].
    pub(crate) fn push(&mut self, frame: OutFrame, reply: Option<Reply>, masked: bool) {
        if self.close_queued {
            if let Some(reply) = reply {
                let _ = reply.send(Err(Error::Closed));
            }
            return;
        }
        let entry = Entry {
            frame,
            reply,
            masked,
            encoded: 0,
            compressed: None,
        };
        match &entry.frame {
            OutFrame::Data(Send::Ping(_)) => push_stocked(&mut self.control, entry),
            OutFrame::Data(Send::Pong(_)) => {
                if entry.reply.is_none() {
                    self.drop_oldest_pong_if_full();
                }
                push_stocked(&mut self.control, entry);
            }
            OutFrame::Data(_) => push_stocked(&mut self.data, entry),
            OutFrame::Close(_) => {
                self.close_queued = true;
                push_stocked(&mut self.data, entry);
            }
        }
    }

    fn drop_oldest_pong_if_full(&mut self) {
        let is_auto_pong =
            |e: &Entry| matches!(e.frame, OutFrame::Data(Send::Pong(_))) && e.reply.is_none();
        if self.control.iter().filter(|e| is_auto_pong(e)).count() >= MAX_PENDING_PONGS {
            if let Some(oldest) = self.control.iter().position(is_auto_pong) {
                self.control.remove(oldest);
            }
        }
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
                Done::from(entry).complete(Err(Error::Closed));
                continue;
            }
            let (opcode, payload) = match &entry.frame {
                OutFrame::Data(Send::Ping(p)) => (OpCode::Ping, p),
                OutFrame::Data(Send::Pong(p)) => (OpCode::Pong, p),
                _ => continue,
            };
            let key = entry.masked.then(&mut *next_key);
            write_frame(dst, opcode, true, 0, payload, key);
            done.push(Done::from(entry));
        }
        while dst.len() < limit && !self.close_encoded {
            let Some(entry) = self.data.front_mut() else {
                break;
            };
            let key = entry.masked.then(&mut *next_key);
            let finished = match &entry.frame {
                OutFrame::Close(status) => {
                    let payload = status.as_ref().map(|s| s.to_payload()).unwrap_or_default();
                    write_frame(dst, OpCode::Close, true, 0, &payload, key);
                    self.close_encoded = true;
                    true
                }
                OutFrame::Data(message) => {
                    let (opcode, raw) = match message {
                        Send::Text(text) => (OpCode::Text, &text.as_bytes()[..]),
                        Send::Binary(bytes) | Send::Ping(bytes) | Send::Pong(bytes) => {
                            (OpCode::Binary, &bytes[..])
                        }
                    };
                    if let (0, None, Some(deflater)) =
                        (entry.encoded, &entry.compressed, self.deflater.as_mut())
                    {
                        entry.compressed = Some(Bytes::from(deflater.compress(raw)));
                    }
                    let payload = entry.compressed.as_deref().unwrap_or(raw);
                    let start = entry.encoded;
                    let end = match self.fragment_size {
                        0 => payload.len(),
                        size => (start + size).min(payload.len()),
                    };
                    let (opcode, rsv) = match (start, &entry.compressed) {
                        (0, Some(_)) => (opcode, RSV1),
                        (0, None) => (opcode, 0),
                        _ => (OpCode::Continuation, 0),
                    };
                    let fin = end == payload.len();
                    write_frame(dst, opcode, fin, rsv, &payload[start..end], key);
                    entry.encoded = end;
                    fin
                }
            };
            if finished {
                if let Some(entry) = self.data.pop_front() {
                    done.push(Done::from(entry));
                }
            }
        }
    }

    /// About how many bytes the next [`fill`](Self::fill) with this `limit` encodes, so
    /// the write buffer can be sized once: exact for uncompressed data, while a Close
    /// frame counts as its largest size and a message still to be compressed as its
    /// uncompressed size.
    pub(crate) fn batch_len_hint(&self, limit: usize) -> usize {
        let framed = |payload: usize, masked: bool| payload + header_len(payload as u64, masked);
        let mut total: usize = self
            .control
            .iter()
            .map(|e| framed(e.payload_len(), e.masked))
            .sum();
        for entry in &self.data {
            if total >= limit {
                break;
            }
            if let OutFrame::Close(_) = entry.frame {
                total += framed(entry.payload_len(), entry.masked);
                break; // nothing is written after it
            }
            let payload = entry
                .compressed
                .as_ref()
                .map_or(entry.payload_len(), Bytes::len);
            let mut remaining = payload - entry.encoded;
            loop {
                let frame = match self.fragment_size {
                    0 => remaining,
                    size => remaining.min(size),
                };
                total += framed(frame, entry.masked);
                remaining -= frame;
                if remaining == 0 || total >= limit {
                    break;
                }
            }
        }
        total
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
        let queued = self.control.drain(..).chain(self.data.drain(..));
        fail_all(queued.map(Done::from), error)
    }
}

/// Answers every one of `done` with `error`; returns how many were data messages.
pub(crate) fn fail_all(done: impl IntoIterator<Item = Done>, error: &Error) -> usize {
    let mut data_messages = 0;
    for d in done {
        if d.is_data() {
            data_messages += 1;
        }
        d.complete(Err(error.clone()));
    }
    data_messages
}

impl Entry {
    /// Length of the payload as given by the sender (for a Close frame, the most it can
    /// be).
    fn payload_len(&self) -> usize {
        match &self.frame {
            OutFrame::Data(message) => message.len(),
            OutFrame::Close(_) => MAX_CONTROL_PAYLOAD,
        }
    }
}

impl From<Entry> for Done {
    fn from(entry: Entry) -> Self {
        Done::new(&entry.frame, entry.reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CloseFrame, Message, Receiver, ReceiverLimits};
    use bytes::Bytes;

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
        outbox.push(OutFrame::Data(Send::binary(vec![1u8; 12])), None, false);
        let mut wire = BytesMut::new();
        let mut done = Vec::new();
        outbox.fill(&mut wire, 1, &mut || [0; 4], &mut done); // one fragment only
        outbox.push(
            OutFrame::Data(Send::Ping(Bytes::from_static(b"p"))),
            None,
            false,
        );
        outbox.fill(&mut wire, 1 << 10, &mut || [0; 4], &mut done);
        assert!(outbox.is_empty());
        assert_eq!(
            decode_all(wire),
            vec![
                Message::Ping(Bytes::from_static(b"p")),
                Message::Binary(Bytes::from(vec![1u8; 12]))
            ]
        );
        assert_eq!(done.len(), 2);
    }

    #[test]
    fn the_queues_let_go_of_their_memory_only_once_both_are_empty() {
        let mut outbox = Outbox::new(4, None);
        outbox.push(OutFrame::Data(Send::binary(vec![1u8; 12])), None, false);
        outbox.push(OutFrame::Data(Send::Ping(Bytes::new())), None, false);
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
        outbox.push(OutFrame::Close(CloseFrame::new(1000, "").ok()), None, false);
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        outbox.push(OutFrame::Data(Send::text("late")), Some(tx), false);
        assert_eq!(rx.try_recv(), Ok(Err(Error::Closed)));
    }

    #[test]
    fn masking_is_the_one_in_force_when_queued() {
        let mut outbox = Outbox::new(0, None);
        outbox.push(OutFrame::Data(Send::text("a")), None, true);
        outbox.push(OutFrame::Data(Send::text("b")), None, false);
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
            outbox.push(
                OutFrame::Data(Send::Pong(Bytes::from(vec![i]))),
                None,
                false,
            );
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
            outbox.push(
                OutFrame::Data(Send::Ping(Bytes::from_static(b"p"))),
                None,
                true,
            );
            for len in [10, 300, 70_000] {
                outbox.push(OutFrame::Data(Send::binary(vec![1u8; len])), None, true);
            }
            outbox.push(
                OutFrame::Close(CloseFrame::new(1000, "bye").ok()),
                None,
                true,
            );
            while !outbox.is_empty() {
                let hint = outbox.batch_len_hint(limit);
                let mut wire = BytesMut::new();
                outbox.fill(&mut wire, limit, &mut || [1, 2, 3, 4], &mut Vec::new());
                let close_slack = MAX_CONTROL_PAYLOAD - 5; // the Close payload is 5 bytes
                assert!(hint >= wire.len(), "hint {hint} < {}", wire.len());
                assert!(
                    hint <= wire.len() + close_slack,
                    "hint {hint} ≫ {} ({fragment_size}, {limit})",
                    wire.len()
                );
            }
        }
    }

    #[test]
    fn fail_all_counts_data_messages() {
        let mut outbox = Outbox::new(0, None);
        outbox.push(OutFrame::Data(Send::text("a")), None, true);
        outbox.push(OutFrame::Data(Send::Ping(Bytes::new())), None, true);
        outbox.push(OutFrame::Data(Send::binary(Bytes::new())), None, true);
        assert_eq!(outbox.fail_all(&Error::Closed), 2);
        assert!(outbox.is_empty());
    }
}
