//! The actors of a session: the session itself and its three children.

pub(crate) mod codec;
pub(crate) mod pinger;
pub(crate) mod ponger;
pub(crate) mod session;
