//! Where a session's events go: an actor's `Recipient`, or the channel behind an
//! [`IncomingStream`](crate::IncomingStream).

use std::sync::Arc;

use actix::Recipient;
use futures::channel::mpsc;
use tokio::sync::oneshot;

use super::backlog::Backlog;
use crate::handle::StreamEvent;
use crate::messages::Incoming;

/// Where the session delivers [`Incoming`] events.
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
