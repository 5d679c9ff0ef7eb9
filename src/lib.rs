//! Actor-based WebSocket client sessions for actix.
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

pub mod proto;
