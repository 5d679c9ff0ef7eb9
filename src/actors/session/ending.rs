//! How a session ended: the facts gathered while closing, turned into the one
//! [`CloseInfo`] the user receives.

use std::time::Duration;

use crate::error::Error;
use crate::messages::{CloseInfo, Initiator};
use crate::proto::{CloseCode, CloseFrame};

/// Why and how the session is ending, gathered until the socket is gone.
#[derive(Debug)]
pub(crate) struct Ending {
    pub(crate) initiator: Initiator,
    /// The peer's Close frame, once it arrived (inner `None`: it carried no status).
    pub(crate) peer_close: Option<Option<CloseFrame>>,
    /// Whether this side's Close frame was queued.
    pub(crate) close_sent: bool,
    /// The error that ended the session, if one did.
    pub(crate) error: Option<Error>,
    /// The code this side failed the connection with, if it did.
    pub(crate) failed_with: Option<CloseFrame>,
}

impl Ending {
    pub(crate) fn new(initiator: Initiator) -> Self {
        Self {
            initiator,
            peer_close: None,
            close_sent: false,
            error: None,
            failed_with: None,
        }
    }
}

/// What the session knows besides the [`Ending`] when the socket is gone.
#[derive(Debug, Default)]
pub(crate) struct EndFacts {
    /// A protocol error that was waiting for the stream's consumer.
    pub(crate) deferred_failure: Option<Error>,
    /// The write error that stopped the codec, if one did.
    pub(crate) write_error: Option<String>,
    /// The close timeout, if it fired.
    pub(crate) close_timeout: Option<Duration>,
    /// Messages accepted and never written.
    pub(crate) unsent: usize,
}

impl Ending {
    /// The report for the user: the error that ended the session (the first one seen),
    /// whether Close frames went both ways without error, and the code: this side's when
    /// it failed the connection, 1006 when the connection was lost, else the peer's (1005
    /// when its Close had no status).
    pub(crate) fn into_close_info(mut self, facts: EndFacts) -> CloseInfo {
        let error = self.error.take().or(facts.deferred_failure).or_else(|| {
            if let Some(why) = facts.write_error {
                Some(Error::ConnectionLost(why))
            } else if self.peer_close.is_some() {
                None
            } else if let Some(limit) = facts.close_timeout {
                Some(Error::CloseTimeout(limit))
            } else {
                Some(Error::ConnectionLost(
                    "socket ended without a close handshake".into(),
                ))
            }
        });
        let clean = error.is_none() && self.close_sent && self.peer_close.is_some();
        let lost = error.as_ref().and_then(Error::close_code) == Some(CloseCode::ABNORMAL);
        let (code, reason) = match (&self.failed_with, &self.peer_close) {
            (Some(ours), _) => (ours.code(), ours.reason().to_string()),
            _ if lost => (CloseCode::ABNORMAL, String::new()),
            (None, Some(Some(theirs))) => (theirs.code(), theirs.reason().to_string()),
            (None, Some(None)) => (CloseCode::NO_STATUS, String::new()),
            (None, None) => (CloseCode::ABNORMAL, String::new()),
        };
        CloseInfo {
            code,
            reason,
            initiator: self.initiator,
            clean,
            error,
            unsent: facts.unsent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(code: u16, reason: &str) -> CloseFrame {
        CloseFrame::new(code, reason).unwrap()
    }

    #[test]
    fn a_completed_handshake_is_clean_with_the_peers_code() {
        let mut ending = Ending::new(Initiator::Local);
        ending.close_sent = true;
        ending.peer_close = Some(Some(frame(1001, "bye")));
        let info = ending.into_close_info(EndFacts {
            close_timeout: Some(Duration::from_secs(1)),
            ..EndFacts::default()
        });
        assert_eq!((info.code.as_u16(), info.reason.as_str()), (1001, "bye"));
        assert!(info.clean);
        assert_eq!(info.error, None);
    }

    #[test]
    fn a_close_without_status_reports_1005() {
        let mut ending = Ending::new(Initiator::Peer);
        ending.close_sent = true;
        ending.peer_close = Some(None);
        let info = ending.into_close_info(EndFacts::default());
        assert_eq!(info.code, CloseCode::NO_STATUS);
        assert!(info.clean);
    }

    #[test]
    fn a_failure_reports_its_own_code_and_is_not_clean() {
        let mut ending = Ending::new(Initiator::Local);
        ending.close_sent = true;
        ending.failed_with = Some(frame(1002, "bad frame"));
        ending.error = Some(Error::Protocol(crate::proto::ProtocolError::MaskedFrame));
        ending.peer_close = Some(Some(frame(1002, "")));
        let info = ending.into_close_info(EndFacts::default());
        assert_eq!(info.code.as_u16(), 1002);
        assert!(!info.clean);
    }

    #[test]
    fn no_peer_close_is_1006_with_the_reason_why() {
        let mut ending = Ending::new(Initiator::Local);
        ending.close_sent = true;
        let timed_out = ending.into_close_info(EndFacts {
            close_timeout: Some(Duration::from_millis(500)),
            unsent: 2,
            ..EndFacts::default()
        });
        assert_eq!(timed_out.code, CloseCode::ABNORMAL);
        assert_eq!(
            timed_out.error,
            Some(Error::CloseTimeout(Duration::from_millis(500)))
        );
        assert_eq!(timed_out.unsent, 2);
        let dropped = Ending::new(Initiator::Peer).into_close_info(EndFacts::default());
        assert_eq!(dropped.code, CloseCode::ABNORMAL);
        assert!(matches!(dropped.error, Some(Error::ConnectionLost(_))));
        let reset = Ending::new(Initiator::Peer).into_close_info(EndFacts {
            write_error: Some("reset".into()),
            ..EndFacts::default()
        });
        assert_eq!(reset.error, Some(Error::ConnectionLost("reset".into())));
    }
}
