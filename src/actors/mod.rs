//! The actors of a session: the session itself and its three children, and the per-thread
//! shelves their per-batch queues are recycled through ([`recycle`]).

pub(crate) mod codec;
pub(crate) mod pinger;
pub(crate) mod ponger;
pub(crate) mod recycle;
pub(crate) mod session;
