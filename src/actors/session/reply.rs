//! How `Send` and `Close` answer: at once, when their frames are written, or after
//! waiting for room in the outbound queue.
//!
//! Forwarding queues the frame with actix's own reply channel for the codec actor, so a send
//! that does not wait for room costs no mailbox hop beyond the session's, and no extra
//! channel or task.

use std::rc::Rc;

use actix::dev::{MessageResponse, OneshotSender};
use actix::Message;
use tokio::sync::oneshot;

use crate::actors::codec::CodecLink;
use crate::actors::session::ClientSession;
use crate::error::Error;
use crate::messages::{OutFrame, Send};

/// The reply to [`Send`](crate::Send) and [`Close`](crate::Close): a `Result<(), Error>`
/// that arrives once the frame is written (or refused).
pub struct SendReply(Kind);

impl std::fmt::Debug for SendReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.0 {
            Kind::Now(_) => "now",
            Kind::Forward(..) => "forward",
            Kind::ForwardBatch { .. } => "forward batch",
            Kind::Later(_) => "later",
        };
        f.debug_tuple("SendReply").field(&kind).finish()
    }
}

enum Kind {
    /// Answer now.
    Now(Result<(), Error>),
    /// Queue the frame with the codec; it answers once written.
    Forward(Rc<CodecLink>, OutFrame),
    /// Queue a batch's messages with the codec; it answers once the one at index `last` is
    /// written.
    ForwardBatch {
        codec: Rc<CodecLink>,
        messages: Vec<Send>,
        last: usize,
    },
    /// The frame waits for room in the session; its answer will come through here.
    Later(oneshot::Receiver<Result<(), Error>>),
}

impl SendReply {
    pub(crate) fn now(result: Result<(), Error>) -> Self {
        Self(Kind::Now(result))
    }

    pub(crate) fn forward(codec: Rc<CodecLink>, frame: OutFrame) -> Self {
        Self(Kind::Forward(codec, frame))
    }

    /// Forwards all of `messages` (data already counted in flight); the reply comes once
    /// the message at index `last` is written.
    pub(crate) fn forward_batch(codec: Rc<CodecLink>, messages: Vec<Send>, last: usize) -> Self {
        Self(Kind::ForwardBatch {
            codec,
            messages,
            last,
        })
    }

    pub(crate) fn later(answer: oneshot::Receiver<Result<(), Error>>) -> Self {
        Self(Kind::Later(answer))
    }

    /// The error, if this reply refuses at once.
    pub(crate) fn refusal(&self) -> Option<&Error> {
        match &self.0 {
            Kind::Now(Err(error)) => Some(error),
            _ => None,
        }
    }

    /// Sends the answer to `tx` when it is known: now, once the frame is written, or once
    /// it left the waiting room and was written. Without `tx` the frame still goes its way
    /// (a `do_send`, or a message of a batch that another message's reply answers for).
    pub(crate) fn answer(self, tx: Option<OneshotSender<Result<(), Error>>>) {
        match self.0 {
            Kind::Now(result) => {
                if let Some(tx) = tx {
                    let _ = tx.send(result);
                }
            }
            Kind::Forward(codec, frame) => codec.write(frame, tx),
            Kind::ForwardBatch {
                codec,
                messages,
                last,
            } => codec.write_batch(messages, last, tx),
            Kind::Later(answer) => {
                if let Some(tx) = tx {
                    actix_rt::spawn(async move {
                        let _ = tx.send(answer.await.unwrap_or(Err(Error::Closed)));
                    });
                }
            }
        }
    }
}

impl<M> MessageResponse<ClientSession, M> for SendReply
where
    M: Message<Result = Result<(), Error>>,
{
    fn handle(
        self,
        _: &mut <ClientSession as actix::Actor>::Context,
        tx: Option<OneshotSender<Result<(), Error>>>,
    ) {
        self.answer(tx);
    }
}
