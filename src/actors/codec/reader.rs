//! The read side of the socket as a stream of decoded batches.
//!
//! Each read is decoded completely before the next: one stream item carries every message
//! that read completed, so the codec actor forwards them to the session in one mailbox
//! message. After the peer's Close frame or a protocol error nothing more is decoded: the
//! stream only drains the socket until the peer ends it, so the peer's last frames are read
//! (not answered with a reset) and the close handshake can finish cleanly.

use std::pin::Pin;
use std::task::{Context, Poll};

use awc::BoxedSocket;
use bytes::BytesMut;
use futures::Stream;
use tokio::io::ReadHalf;
use tokio_util::io::poll_read_buf;

use crate::messages::ReadEnded;
use crate::proto::{Message, Receiver};

/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;
/// An empty read buffer larger than this is released instead of kept.
const KEEP_CAPACITY: usize = 64 * 1024;

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
}

impl FrameReader {
    /// A reader starting with `leftover`: bytes read during the handshake.
    pub(crate) fn new(io: ReadHalf<BoxedSocket>, leftover: BytesMut, receiver: Receiver) -> Self {
        Self {
            io,
            buf: leftover,
            receiver,
            mode: Mode::Decode,
            failed: None,
        }
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
            if this.buf.is_empty() && this.buf.capacity() > KEEP_CAPACITY {
                this.buf = BytesMut::new();
            }
            this.buf.reserve(READ_CHUNK);
            match poll_read_buf(Pin::new(&mut this.io), cx, &mut this.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    this.mode = Mode::Done;
                    return Poll::Ready(Some(ReadEvent::Ended(ReadEnded::Eof)));
                }
                Poll::Ready(Ok(n)) => log::trace!("read {n} bytes"),
                Poll::Ready(Err(error)) => {
                    this.mode = Mode::Done;
                    return Poll::Ready(Some(ReadEvent::Ended(ReadEnded::Io(error.to_string()))));
                }
            }
        }
    }
}
