//! The pinger: sends a Ping every `ping_interval` and fails the connection when the
//! matching Pong does not come back within `ping_timeout`.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix::WeakAddr;
use bytes::Bytes;
use rand::Rng;

use crate::actors::codec::CodecActor;
use crate::actors::session::ClientSession;
use crate::messages::{LivenessLost, OutFrame, PeerPong, RttMeasured, Send, StopChild, Write};

/// Liveness supervisor of one session.
pub(crate) struct Pinger {
    session: WeakAddr<ClientSession>,
    codec: WeakAddr<CodecActor>,
    interval: Duration,
    timeout: Duration,
    /// The payload of the Ping awaiting its Pong, and when it was sent.
    outstanding: Option<(Bytes, Instant)>,
}

impl Pinger {
    pub(crate) fn new(
        session: WeakAddr<ClientSession>,
        codec: WeakAddr<CodecActor>,
        interval: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            session,
            codec,
            interval,
            timeout,
            outstanding: None,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.outstanding.is_some() {
            return; // the timeout check of the outstanding Ping decides
        }
        let Some(codec) = self.codec.upgrade() else {
            ctx.stop();
            return;
        };
        let payload = Bytes::copy_from_slice(&rand::rng().next_u64().to_be_bytes());
        codec.do_send(Write {
            frame: OutFrame::Data(Send::Ping(payload.clone())),
            reply: None,
        });
        self.outstanding = Some((payload.clone(), Instant::now()));
        let timeout = self.timeout;
        ctx.run_later(timeout, move |act, ctx| {
            let still_waiting = act
                .outstanding
                .as_ref()
                .is_some_and(|(waiting, _)| *waiting == payload);
            if still_waiting {
                log::info!("no pong within {timeout:?}: connection considered dead");
                if let Some(session) = act.session.upgrade() {
                    session.do_send(LivenessLost(timeout));
                }
                ctx.stop();
            }
        });
    }
}

impl Actor for Pinger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |act, ctx| {
            if act.session.upgrade().is_none() {
                ctx.stop();
                return;
            }
            act.tick(ctx);
        });
    }
}

impl Handler<PeerPong> for Pinger {
    type Result = ();

    fn handle(&mut self, msg: PeerPong, _: &mut Context<Self>) {
        let matches = self
            .outstanding
            .as_ref()
            .is_some_and(|(payload, _)| *payload == msg.0);
        if !matches {
            return; // unsolicited, or the answer to a user's Ping
        }
        if let Some((_, sent)) = self.outstanding.take() {
            let rtt = sent.elapsed();
            log::trace!("pong after {rtt:?}");
            if let Some(session) = self.session.upgrade() {
                session.do_send(RttMeasured(rtt));
            }
        }
    }
}

impl Handler<StopChild> for Pinger {
    type Result = ();

    fn handle(&mut self, _: StopChild, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
