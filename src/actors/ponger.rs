//! The ponger: answers every Ping of the peer with a Pong of the same payload
//! (RFC 6455 §5.5.2–5.5.3).
//!
//! The Pong goes straight to the codec actor, which writes control frames ahead of queued
//! data. Under a burst the codec keeps at most 32 automatic Pongs waiting, dropping the
//! oldest, so the most recent Ping is always answered.

use actix::prelude::*;
use actix::WeakAddr;

use crate::actors::codec::CodecActor;
use crate::messages::{OutFrame, PeerPing, Send, StopChild, Write};

/// Answers the peer's Pings for one session.
pub(crate) struct Ponger {
    codec: WeakAddr<CodecActor>,
}

impl Ponger {
    pub(crate) fn new(codec: WeakAddr<CodecActor>) -> Self {
        Self { codec }
    }
}

impl Actor for Ponger {
    type Context = Context<Self>;
}

impl Handler<PeerPing> for Ponger {
    type Result = ();

    fn handle(&mut self, msg: PeerPing, ctx: &mut Context<Self>) {
        match self.codec.upgrade() {
            Some(codec) => codec.do_send(Write {
                frame: OutFrame::Data(Send::Pong(msg.0)),
                reply: None,
            }),
            None => ctx.stop(),
        }
    }
}

impl Handler<StopChild> for Ponger {
    type Result = ();

    fn handle(&mut self, _: StopChild, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
