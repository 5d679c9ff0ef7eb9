//! Where a session's events go: an actor's `Recipient`, or the channel behind an
//! [`IncomingStream`](crate::IncomingStream).

use std::sync::Arc;

use actix::Recipient;
use futures::channel::mpsc;
use tokio::sync::oneshot;

use super::backlog::Backlog;
use crate::actors::recycle;
use crate::handle::StreamEvent;
use crate::messages::Incoming;
use crate::proto::{CloseFrame, Message};

/// Where the session delivers [`Incoming`] events.
#[derive(Debug)]
pub(crate) enum Deliver {
    /// An actor (or any recipient) of the user's.
    Recipient(Recipient<Incoming>),
    /// The stream of a [`Session`](crate::Session), with its inbound bound.
    Channel(mpsc::UnboundedSender<StreamEvent>, Arc<Backlog>),
}

impl Deliver {
    pub(crate) fn send(&self, event: Incoming) {
        self.send_all(vec![event]);
    }

    /// Delivers events in order: to a stream as one batch (one channel node for all).
    pub(crate) fn send_all(&self, events: Vec<Incoming>) {
        if events.is_empty() {
            return;
        }
        match self {
            Self::Recipient(recipient) => {
                for event in events {
                    recipient.do_send(event);
                }
            }
            Self::Channel(channel, backlog) => {
                backlog.delivered(events.iter().map(Backlog::weight).sum());
                let _ = channel.unbounded_send(StreamEvent::Batch(events));
            }
        }
    }

    /// Delivers `messages` when all of them are data messages (Text and Binary), which need
    /// nothing from the session; gives them back untouched otherwise.
    ///
    /// A stream gets the read's vector as it is, and turns each message into an
    /// [`Incoming`] as its consumer takes it: no second vector, no pass over the batch here.
    pub(crate) fn send_data(&self, mut messages: Vec<Message>) -> Result<(), Vec<Message>> {
        if messages.is_empty() {
            recycle::give(messages);
            return Ok(());
        }
        if !messages.iter().all(is_data) {
            return Err(messages);
        }
        match self {
            Self::Recipient(recipient) => {
                // Every message is data: each one converts.
                for event in messages.drain(..).filter_map(|m| incoming_of(m).ok()) {
                    recipient.do_send(event);
                }
                recycle::give(messages);
            }
            Self::Channel(channel, backlog) => {
                backlog.delivered(messages.iter().map(Backlog::message_weight).sum());
                let _ = channel.unbounded_send(StreamEvent::Data(messages));
            }
        }
        Ok(())
    }

    /// The inbound bound the codec's reader must respect, if any.
    pub(crate) fn backlog(&self) -> Option<Arc<Backlog>> {
        match self {
            Self::Recipient(_) => None,
            Self::Channel(_, backlog) => Some(Arc::clone(backlog)),
        }
    }

    /// For a stream: a signal that fires once its consumer has handled every event
    /// delivered so far and asks for the next one. A consumer that answers each message
    /// before reading the next has then queued all its answers. `None` for a recipient,
    /// whose handling the session cannot observe.
    pub(crate) fn barrier(&self) -> Option<oneshot::Receiver<()>> {
        match self {
            Self::Recipient(_) => None,
            Self::Channel(channel, _) => {
                let (reached, signal) = oneshot::channel();
                let _ = channel.unbounded_send(StreamEvent::Barrier(reached));
                Some(signal)
            }
        }
    }
}

/// Whether `message` is a Text or Binary message.
fn is_data(message: &Message) -> bool {
    matches!(message, Message::Text(_) | Message::Binary(_))
}

/// The event for a received message, or the status of a Close frame (which the session
/// handles, and delivers only as [`Incoming::Closed`] once the connection ended).
pub(crate) fn incoming_of(message: Message) -> Result<Incoming, Option<CloseFrame>> {
    match message {
        Message::Text(text) => Ok(Incoming::Text(text)),
        Message::Binary(bytes) => Ok(Incoming::Binary(bytes)),
        Message::Ping(payload) => Ok(Incoming::Ping(payload)),
        Message::Pong(payload) => Ok(Incoming::Pong(payload)),
        Message::Close(status) => Err(status),
    }
}
