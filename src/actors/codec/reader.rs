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
use bytes::BytesMut;
use futures::Stream;
use tokio::io::{AsyncRead, ReadBuf, ReadHalf};
use tokio_util::io::poll_read_buf;

use std::sync::Arc;

use crate::actors::session::Backlog;
use crate::messages::ReadEnded;
use crate::proto::{Message, Receiver};

/// Smallest and largest room made in the read buffer before a read. The chunk doubles
/// after a read that filled it and halves after one that used less than a quarter.
const MIN_CHUNK: usize = 8 * 1024;
const MAX_CHUNK: usize = 256 * 1024;
/// Size of the on-stack buffer an idle connection reads into: while nothing arrives, a
/// session holds no read buffer on the heap at all.
const PROBE: usize = 8 * 1024;

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
    receiver: Receiver,
    mode: Mode,
    /// A protocol error waiting to be reported after the messages that preceded it.
    failed: Option<ReadEnded>,
    /// Room to make for the next heap read.
    chunk: usize,
    /// Whether the last read filled all the room it had (more is probably waiting).
    last_read_full: bool,
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
            receiver,
            mode: Mode::Decode,
            failed: None,
            chunk: MIN_CHUNK,
            last_read_full: false,
            backlog,
        }
    }

    /// Reads into a stack buffer, so an idle connection waits without a heap buffer.
    fn poll_probe(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let mut probe = [MaybeUninit::<u8>::uninit(); PROBE];
        let mut probe = ReadBuf::uninit(&mut probe);
        match Pin::new(&mut self.io).poll_read(cx, &mut probe) {
            Poll::Pending => {
                self.buf = BytesMut::new();
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                self.buf.extend_from_slice(probe.filled());
                Poll::Ready(Ok(probe.filled().len()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
        }
    }

    /// Reads into the heap buffer, adapting the room made to how much arrives, and making
    /// room at once for the rest of a frame whose payload is arriving (up to `MAX_CHUNK`:
    /// reserving whole 1 MiB frames at once was measured slower than growing the buffer,
    /// the fresh large allocations costing more page faults than the copies they save).
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let missing = self.receiver.missing(&self.buf).min(MAX_CHUNK as u64) as usize;
        self.buf.reserve(self.chunk.max(missing));
        let room = self.buf.capacity() - self.buf.len();
        let read = poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf);
        if let Poll::Ready(Ok(n)) = read {
            if n >= room {
                self.chunk = (self.chunk * 2).min(MAX_CHUNK);
            } else if n < self.chunk / 4 {
                self.chunk = (self.chunk / 2).max(MIN_CHUNK);
            }
        }
        read
    }

    /// Decodes everything complete in the buffer.
    fn decode_buffered(&mut self) -> Vec<Message> {
        let mut batch = Vec::new();
        while self.mode == Mode::Decode {
            match self.receiver.poll(&mut self.buf) {
                Ok(Some(message)) => {
                    let is_close = matches!(message, Message::Close(_));
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
            let read = if this.buf.is_empty() && !this.last_read_full {
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
