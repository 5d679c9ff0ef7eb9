//! The read side of the socket as a stream of decoded batches.
//!
//! Each read is decoded completely before the next: one stream item carries every message
//! that read completed, so the codec actor forwards them to the session in one mailbox
//! message. After the peer's Close frame or a protocol error nothing more is decoded: the
//! stream only drains the socket until the peer ends it, so the peer's last frames are read
//! (not answered with a reset) and the close handshake can finish cleanly.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use awc::BoxedSocket;
use bytes::{BufMut, BytesMut};
use futures::Stream;
use tokio::io::{AsyncRead, ReadBuf, ReadHalf};
use tokio_util::io::poll_read_buf;

use std::sync::Arc;

use super::pool::{self, Pooled};
use crate::actors::recycle::{self, recyclable};
use crate::actors::session::Backlog;
use crate::messages::ReadEnded;
use crate::proto::{Message, Receiver};

/// Smallest and largest size a read fills the read buffer up to (what the buffer already
/// holds counts toward it, so that the buffer is one pool class of this size). The chunk
/// doubles after a read that filled all its room and halves after one that read less than
/// a quarter of it; reads into a free tail shorter than that (see [`read_room`]) leave it.
const MIN_CHUNK: usize = 8 * 1024;
const MAX_CHUNK: usize = 256 * 1024;
/// Size of the on-stack buffer an idle connection reads into: while nothing arrives, a
/// session holds no read buffer on the heap at all.
const PROBE: usize = 8 * 1024;
/// Largest rest of a frame the read buffer is sized for at once (a peer can make a
/// connection reserve this much by declaring a large frame); beyond it, the buffer grows
/// as the payload arrives.
const MAX_FRAME_RESERVE: usize = 4 << 20;

recyclable!(Message);

/// One item of the read stream.
#[derive(Debug)]
pub(crate) enum ReadEvent {
    /// Messages completed by one read, in wire order.
    Messages(Vec<Message>),
    /// Reading ended (or, for a protocol error, stopped decoding).
    Ended(ReadEnded),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Decoding frames.
    Decode,
    /// Discarding input until the socket ends.
    Drain,
    /// The socket ended.
    Done,
}

/// The read half of the socket, decoded.
pub(crate) struct FrameReader {
    io: ReadHalf<BoxedSocket>,
    buf: BytesMut,
    /// Size of `buf`'s whole allocation when it came from the [`pool`] (0 otherwise):
    /// after messages are sliced off its head, `buf` is only the tail of it.
    buf_size: usize,
    receiver: Receiver,
    mode: Mode,
    /// A protocol error waiting to be reported after the messages that preceded it.
    failed: Option<ReadEnded>,
    /// Room to make for the next heap read.
    chunk: usize,
    /// Whether the last read filled all the room it had (more is probably waiting).
    last_read_full: bool,
    /// Whether the last frame seen arriving was large: the next read between frames then
    /// takes only `MIN_CHUNK` bytes, enough for the next header, so that a large payload
    /// after it is read into its own buffer instead of being copied there.
    large_frames: bool,
    /// The stream consumer's backlog: reading pauses while it is over its bound.
    backlog: Option<Arc<Backlog>>,
}

impl FrameReader {
    /// A reader starting with `leftover`: bytes read during the handshake.
    pub(crate) fn new(
        io: ReadHalf<BoxedSocket>,
        leftover: BytesMut,
        receiver: Receiver,
        backlog: Option<Arc<Backlog>>,
    ) -> Self {
        Self {
            io,
            buf: if leftover.is_empty() {
                BytesMut::new()
            } else {
                leftover
            },
            buf_size: 0,
            receiver,
            mode: Mode::Decode,
            failed: None,
            chunk: MIN_CHUNK,
            last_read_full: false,
            large_frames: false,
            backlog,
        }
    }

    /// Reads into a stack buffer, so an idle connection waits without a heap buffer.
    fn poll_probe(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let mut probe = [MaybeUninit::<u8>::uninit(); PROBE];
        let mut probe = ReadBuf::uninit(&mut probe);
        match Pin::new(&mut self.io).poll_read(cx, &mut probe) {
            Poll::Pending => {
                self.release_buffer();
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                let read = probe.filled().len();
                // A full probe means more is waiting: unless frames are large (each is
                // read into its own buffer), size the buffer for the chunk read that
                // follows now, so that the probe's bytes are copied once.
                let more_small_frames = read == PROBE && !self.large_frames;
                let room = if more_small_frames {
                    self.chunk.max(read)
                } else {
                    read
                };
                self.make_room(room);
                self.buf.extend_from_slice(probe.filled());
                Poll::Ready(Ok(read))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
        }
    }

    /// Reads into the heap buffer, adapting the room made to how much arrives. While a
    /// large frame's payload is arriving, room is made at once for the rest of it (if that
    /// is at most `MAX_FRAME_RESERVE`) and the read stops a little past its end: the frame
    /// is read straight into the memory its message will use, and at most `MIN_CHUNK`
    /// bytes of the next frame are read along and must move to that frame's own buffer.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let missing = self.receiver.missing(&self.buf);
        if missing > 0 {
            self.large_frames = missing >= pool::MIN_POOLED as u64;
        }
        let free_tail = self.buf.capacity() - self.buf.len();
        let ReadRoom { room, tail_limited } = read_room(
            missing,
            self.buf.len(),
            free_tail,
            self.chunk,
            self.large_frames,
        );
        self.make_room(room);
        let read = poll_read_buf(Pin::new(&mut self.io), cx, &mut (&mut self.buf).limit(room));
        match read {
            Poll::Ready(Ok(_)) if missing == 0 && self.large_frames => {} // a header read
            // How much a read into a shorter tail got says little about how much is waiting.
            Poll::Ready(Ok(_)) if tail_limited => {}
            Poll::Ready(Ok(n)) if n >= room => self.chunk = (self.chunk * 2).min(MAX_CHUNK),
            Poll::Ready(Ok(n)) if n < self.chunk / 4 => {
                self.chunk = (self.chunk / 2).max(MIN_CHUNK);
            }
            Poll::Pending if self.buf.is_empty() => self.release_buffer(),
            _ => {}
        }
        read
    }

    /// Makes room for `room` more bytes after what `buf` holds. Buffers of the sizes the
    /// thread's [`pool`] serves come from it, so memory whose messages the user already
    /// dropped is used again instead of fresh memory; other sizes from the allocator. A
    /// pooled buffer is only ever replaced (never grown by the allocator), so its recorded
    /// size stays true.
    fn make_room(&mut self, room: usize) {
        if self.buf.capacity() - self.buf.len() >= room {
            return;
        }
        let needed = self.buf.len() + room;
        if self.buf_size == 0 && !pool::is_pooled(needed) {
            self.buf.reserve(room);
            return;
        }
        if self.buf_size >= needed && self.buf.try_reclaim(room) {
            return; // this buffer's earlier messages are all dropped: start over in it
        }
        let mut next = pool::take(needed);
        next.buf.extend_from_slice(&self.buf);
        let previous = std::mem::replace(&mut self.buf, next.buf);
        let previous_size = std::mem::replace(&mut self.buf_size, next.size);
        pool::give(Pooled {
            buf: previous,
            size: previous_size,
        });
    }

    /// Lets go of an empty read buffer while the connection waits for data.
    fn release_buffer(&mut self) {
        let size = std::mem::take(&mut self.buf_size);
        pool::give(Pooled {
            buf: std::mem::take(&mut self.buf),
            size,
        });
    }

    /// Decodes everything complete in the buffer. The batch's vector comes from the
    /// thread's shelf; the session gives it back once it has taken the messages.
    fn decode_buffered(&mut self) -> Vec<Message> {
        let mut batch = Vec::new();
        while self.mode == Mode::Decode {
            match self.receiver.poll(&mut self.buf) {
                Ok(Some(message)) => {
                    let is_close = matches!(message, Message::Close(_));
                    recycle::stock(&mut batch);
                    batch.push(message);
                    if is_close {
                        self.mode = Mode::Drain;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    log::debug!("peer broke the protocol: {error}");
                    self.failed = Some(ReadEnded::Protocol(error));
                    self.mode = Mode::Drain;
                }
            }
        }
        if self.mode == Mode::Drain {
            self.buf.clear();
        }
        batch
    }
}

/// How many bytes the next heap read may take, given the bytes `missing` from the frame
/// whose payload is arriving (0 if none), the bytes the buffer `holds`, the `free_tail`
/// after them (its memory is the buffer's: messages sliced off its head do not give it
/// back), the current `chunk` and whether frames are large:
/// * between large frames, `MIN_CHUNK`: enough for the next header;
/// * for a small frame, enough to bring what the buffer holds to `chunk` bytes (at least
///   the rest of the frame, and at least `MIN_CHUNK`), so that a new buffer is one pool
///   class of `chunk` bytes rather than `chunk` bytes more than it holds; but no more than
///   the free tail when that is enough for the rest of the frame and `MIN_CHUNK`: a read
///   right after a full probe then fills the chunk-sized buffer the probe went into,
///   instead of moving to a new one;
/// * for a large frame, its rest plus `MIN_CHUNK` (the frame is read into memory of its
///   own, and a little of the next one along);
/// * past `MAX_FRAME_RESERVE`, that much (or as much as the buffer holds): the buffer
///   doubles as the payload arrives.
fn read_room(
    missing: u64,
    holds: usize,
    free_tail: usize,
    chunk: usize,
    large_frames: bool,
) -> ReadRoom {
    let sized = |room| ReadRoom {
        room,
        tail_limited: false,
    };
    match usize::try_from(missing) {
        Ok(0) if large_frames => sized(MIN_CHUNK),
        Ok(missing) if missing < pool::MIN_POOLED => {
            let least = missing.max(MIN_CHUNK);
            let up_to_chunk = chunk.saturating_sub(holds).max(least);
            if (least..up_to_chunk).contains(&free_tail) {
                ReadRoom {
                    room: free_tail,
                    tail_limited: true,
                }
            } else {
                sized(up_to_chunk)
            }
        }
        Ok(missing) if missing <= MAX_FRAME_RESERVE => sized(missing + MIN_CHUNK),
        _ => sized(MAX_FRAME_RESERVE.max(holds)),
    }
}

/// What [`read_room`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReadRoom {
    /// Bytes the read may take.
    room: usize,
    /// The room is the buffer's free tail, shorter than the chunk would make it.
    tail_limited: bool,
}

impl Stream for FrameReader {
    type Item = ReadEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReadEvent>> {
        let this = &mut *self;
        loop {
            if this.mode == Mode::Done {
                return Poll::Ready(None);
            }
            let batch = this.decode_buffered();
            if !batch.is_empty() {
                return Poll::Ready(Some(ReadEvent::Messages(batch)));
            }
            if let Some(failed) = this.failed.take() {
                return Poll::Ready(Some(ReadEvent::Ended(failed)));
            }
            let consumer_behind =
                this.mode == Mode::Decode && this.backlog.as_ref().is_some_and(|b| b.must_wait(cx));
            if consumer_behind {
                return Poll::Pending; // woken by the stream when it catches up
            }
            // Large reads go straight to a (pooled) heap buffer; an idle wait holds none.
            let streaming = this.last_read_full || this.chunk >= pool::MIN_POOLED;
            let read = if this.buf.is_empty() && !streaming {
                this.poll_probe(cx)
            } else {
                this.poll_chunk(cx)
            };
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    this.mode = Mode::Done;
                    return Poll::Ready(Some(ReadEvent::Ended(ReadEnded::Eof)));
                }
                Poll::Ready(Ok(n)) => {
                    log::trace!("read {n} bytes");
                    this.last_read_full = n >= PROBE.min(this.chunk);
                }
                Poll::Ready(Err(error)) => {
                    this.mode = Mode::Done;
                    return Poll::Ready(Some(ReadEvent::Ended(ReadEnded::Io(error.to_string()))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;

    fn room(missing: u64, holds: usize, free_tail: usize, chunk: usize, large: bool) -> usize {
        read_room(missing, holds, free_tail, chunk, large).room
    }

    #[test]
    fn small_frames_fill_the_buffer_up_to_the_chunk() {
        // Half a 16 KiB frame held, no free tail: the read brings the buffer to 64 KiB.
        assert_eq!(room(8 * KIB as u64, 8 * KIB, 0, 64 * KIB, false), 56 * KIB);
        // Between frames, with nothing held: a whole chunk.
        assert_eq!(room(0, 0, 0, 128 * KIB, false), 128 * KIB);
    }

    #[test]
    fn a_free_tail_that_is_enough_is_filled_instead_of_moving() {
        // After a full probe into a 64 KiB buffer whose complete messages were sliced off:
        // 500 bytes held, 56 KiB free after them.
        assert_eq!(room(300, 500, 56 * KIB, 64 * KIB, false), 56 * KIB);
        // A tail larger than the chunk asks for is not filled past it.
        assert_eq!(room(0, 0, 200 * KIB, 32 * KIB, false), 32 * KIB);
        // A tail too short for the rest of the frame is not used.
        assert_eq!(room(20_000, 100, 16 * KIB, 64 * KIB, false), 64 * KIB - 100);
    }

    #[test]
    fn a_small_read_still_takes_the_rest_of_the_frame_and_a_minimum() {
        // The buffer holds more than the chunk: the rest of the frame.
        assert_eq!(room(40_000, 60_000, 0, 32 * KIB, false), 40_000);
        // Almost nothing missing and the chunk reached: at least MIN_CHUNK.
        assert_eq!(room(10, 40_000, 0, 32 * KIB, false), MIN_CHUNK);
    }

    #[test]
    fn large_frames_get_their_rest_and_headers_a_minimum() {
        let missing = 300 * KIB as u64;
        assert_eq!(room(missing, 8, 0, 8 * KIB, true), 300 * KIB + MIN_CHUNK);
        assert_eq!(room(0, 0, 0, 256 * KIB, true), MIN_CHUNK);
        let huge = (MAX_FRAME_RESERVE as u64) * 4;
        assert_eq!(room(huge, 10, 0, MIN_CHUNK, true), MAX_FRAME_RESERVE);
        let held = MAX_FRAME_RESERVE * 2;
        assert_eq!(room(huge, held, 0, MIN_CHUNK, true), held);
    }
}
