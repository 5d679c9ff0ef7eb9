//! The session's side of the outbound queue bound: bytes in flight and the waiting room.
//!
//! A message is *in flight* from the moment it is forwarded to the codec actor until the
//! codec reports it written. While in-flight bytes would exceed the bound, new messages
//! wait here in order (their senders' replies pending), up to the bound again; beyond that
//! they are refused with [`Error::QueueFull`].

use std::collections::VecDeque;

use tokio::sync::oneshot;

use crate::error::Error;
use crate::messages::OutFrame;

/// A message waiting for room.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub(crate) frame: OutFrame,
    pub(crate) len: usize,
    pub(crate) reply: oneshot::Sender<Result<(), Error>>,
}

/// What to do with a new message.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Forward it now; it is counted in flight.
    Forward(OutFrame),
    /// It waits; its answer comes through the receiver.
    Wait(oneshot::Receiver<Result<(), Error>>),
    /// Refuse it.
    Refuse(Error),
}

/// In-flight accounting and the waiting room.
#[derive(Debug)]
pub(crate) struct OutboundQueue {
    bound: usize,
    in_flight: usize,
    waiting: VecDeque<Waiting>,
    waiting_bytes: usize,
}

impl OutboundQueue {
    pub(crate) fn new(bound: usize) -> Self {
        Self {
            bound,
            in_flight: 0,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
        }
    }

    /// Payload bytes forwarded and not yet written.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether messages are waiting for room.
    pub(crate) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Decides about a data message of `len` bytes.
    pub(crate) fn admit(&mut self, frame: OutFrame, len: usize) -> Admission {
        let mut fill = self.fill();
        match fill.place(len, self.bound) {
            Err(error) => Admission::Refuse(error),
            Ok(Place::Forward) => {
                self.in_flight = fill.in_flight;
                Admission::Forward(frame)
            }
            Ok(Place::Wait) => {
                let (reply, answer) = oneshot::channel();
                self.waiting_bytes = fill.waiting_bytes;
                self.waiting.push_back(Waiting { frame, len, reply });
                Admission::Wait(answer)
            }
        }
    }

    /// Whether data messages of these lengths, admitted in order now, would all be
    /// forwarded or wait; otherwise the error [`admit`](Self::admit) would give the first
    /// one refused. Changes nothing.
    pub(crate) fn admits_all(&self, lens: impl IntoIterator<Item = usize>) -> Result<(), Error> {
        let mut fill = self.fill();
        for len in lens {
            fill.place(len, self.bound)?;
        }
        Ok(())
    }

    /// Counts data messages of `total` bytes in flight at once when admitting them one by
    /// one would forward every one (nothing waits, and all of them fit under the bound);
    /// otherwise changes nothing and returns `false`.
    pub(crate) fn forward_all(&mut self, total: usize) -> bool {
        let mut fill = self.fill();
        let forwarded = fill.forward(total, self.bound);
        self.in_flight = fill.in_flight;
        forwarded
    }

    fn fill(&self) -> Fill {
        Fill {
            in_flight: self.in_flight,
            waiting_bytes: self.waiting_bytes,
            waits: !self.waiting.is_empty(),
        }
    }

    /// `bytes` were written; returns the waiting messages that now fit, in order.
    pub(crate) fn written(&mut self, bytes: usize) -> Vec<Waiting> {
        self.in_flight = self.in_flight.saturating_sub(bytes);
        let mut ready = Vec::new();
        while let Some(next) = self.waiting.front() {
            if self.in_flight.saturating_add(next.len) > self.bound {
                break;
            }
            if let Some(next) = self.pop_waiting() {
                self.in_flight = self.in_flight.saturating_add(next.len);
                ready.push(next);
            }
        }
        ready
    }

    /// Every waiting message, in order, counted in flight (used when a Close must flush
    /// them ahead of its Close frame).
    pub(crate) fn drain_waiting(&mut self) -> Vec<Waiting> {
        let all: Vec<Waiting> = self.waiting.drain(..).collect();
        self.in_flight = self.in_flight.saturating_add(self.waiting_bytes);
        self.waiting_bytes = 0;
        all
    }

    fn pop_waiting(&mut self) -> Option<Waiting> {
        let next = self.waiting.pop_front()?;
        self.waiting_bytes -= next.len;
        Some(next)
    }
}

/// Where a data message goes.
enum Place {
    Forward,
    Wait,
}

/// The counts [`OutboundQueue::admit`] decides by: the one rule for placing a message,
/// applied for real by `admit` and on a copy by `admits_all` (and its forwarding half, for
/// a whole batch, by `forward_all`).
#[derive(Clone, Copy)]
struct Fill {
    in_flight: usize,
    waiting_bytes: usize,
    /// Messages wait already: a new one must queue behind them.
    waits: bool,
}

impl Fill {
    /// Counts `len` bytes in flight when they can go to the codec now: nothing waits, and
    /// they fit under `bound` beside what is in flight. Otherwise changes nothing.
    fn forward(&mut self, len: usize, bound: usize) -> bool {
        match self.in_flight.checked_add(len) {
            Some(sum) if sum <= bound && !self.waits => {
                self.in_flight = sum;
                true
            }
            _ => false,
        }
    }

    /// Places a message of `len` bytes under `bound`, counting it, or refuses it.
    fn place(&mut self, len: usize, bound: usize) -> Result<Place, Error> {
        if len > bound {
            return Err(Error::MessageTooLarge {
                size: len,
                max: bound,
            });
        }
        if self.forward(len, bound) {
            return Ok(Place::Forward);
        }
        let Some(waiting_bytes) = self.waiting_bytes.checked_add(len).filter(|&w| w <= bound)
        else {
            return Err(Error::QueueFull {
                queued: self.in_flight.saturating_add(self.waiting_bytes),
                max: bound,
            });
        };
        self.waiting_bytes = waiting_bytes;
        self.waits = true;
        Ok(Place::Wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Send;

    fn frame(len: usize) -> OutFrame {
        OutFrame::Data(Send::binary(vec![0u8; len]))
    }

    #[test]
    fn messages_wait_when_over_the_bound_and_go_in_order() {
        let mut q = OutboundQueue::new(10);
        assert!(matches!(q.admit(frame(6), 6), Admission::Forward(_)));
        assert!(matches!(q.admit(frame(6), 6), Admission::Wait(_)));
        assert!(matches!(q.admit(frame(1), 1), Admission::Wait(_)));
        assert_eq!(q.in_flight(), 6);
        let ready = q.written(6);
        assert_eq!(ready.iter().map(|w| w.len).collect::<Vec<_>>(), vec![6, 1]);
        assert_eq!(q.in_flight(), 7);
    }

    #[test]
    fn admits_all_agrees_with_admitting_one_by_one() {
        let cases: [&[usize]; 5] = [&[3, 3, 3], &[6, 6, 1], &[6, 6, 6], &[11], &[10, 10, 1]];
        for lens in cases {
            let mut q = OutboundQueue::new(10);
            let predicted = q.admits_all(lens.iter().copied());
            let mut actual = Ok(());
            for &len in lens {
                if let Admission::Refuse(error) = q.admit(frame(len), len) {
                    actual = Err(error);
                    break;
                }
            }
            assert_eq!(predicted, actual, "lens {lens:?}");
        }
        let mut q = OutboundQueue::new(10);
        assert!(matches!(q.admit(frame(8), 8), Admission::Forward(_)));
        assert!(matches!(q.admit(frame(1), 1), Admission::Forward(_)));
        // In flight 9: the next 2 bytes wait, and once one waits, all after it wait.
        assert_eq!(q.admits_all([2, 1, 7]), Ok(()));
        assert!(matches!(
            q.admits_all([2, 1, 8]),
            Err(Error::QueueFull {
                queued: 12,
                max: 10
            })
        ));
    }

    #[test]
    fn forward_all_takes_a_batch_only_where_admit_would_forward_each() {
        let cases: [&[usize]; 5] = [&[3, 3, 3], &[6, 4], &[6, 5], &[11], &[]];
        for lens in cases {
            let mut whole = OutboundQueue::new(10);
            let mut one_by_one = OutboundQueue::new(10);
            let each_forwarded = lens
                .iter()
                .all(|&len| matches!(one_by_one.admit(frame(len), len), Admission::Forward(_)));
            assert_eq!(
                whole.forward_all(lens.iter().sum()),
                each_forwarded,
                "{lens:?}"
            );
            let expected = if each_forwarded {
                one_by_one.in_flight()
            } else {
                0
            };
            assert_eq!(whole.in_flight(), expected, "{lens:?}");
        }
        // Once a message waits, a batch queues behind it, however small.
        let mut q = OutboundQueue::new(10);
        assert!(matches!(q.admit(frame(10), 10), Admission::Forward(_)));
        assert!(matches!(q.admit(frame(1), 1), Admission::Wait(_)));
        assert!(!q.forward_all(0));
        assert_eq!(q.in_flight(), 10);
    }

    #[test]
    fn an_unbounded_queue_counts_without_overflowing() {
        let mut q = OutboundQueue::new(usize::MAX);
        assert!(q.forward_all(usize::MAX - 1));
        assert!(!q.forward_all(2), "past the bound: not forwarded at once");
        assert_eq!(q.in_flight(), usize::MAX - 1);
        // Admitted one by one, the second would wait rather than overflow the count.
        assert_eq!(q.admits_all([1, 1, usize::MAX - 1]), Ok(()));
        assert!(q.admits_all([1, 1, usize::MAX]).is_err());
    }

    #[test]
    fn too_large_and_queue_full_are_refused() {
        let mut q = OutboundQueue::new(10);
        assert!(matches!(
            q.admit(frame(11), 11),
            Admission::Refuse(Error::MessageTooLarge { size: 11, max: 10 })
        ));
        assert!(matches!(q.admit(frame(10), 10), Admission::Forward(_)));
        assert!(matches!(q.admit(frame(10), 10), Admission::Wait(_)));
        assert!(matches!(
            q.admit(frame(1), 1),
            Admission::Refuse(Error::QueueFull { .. })
        ));
    }
}
