//! The wire format of RFC 6455, sans I/O.
//!
//! Nothing here reads a socket, starts a timer or draws a random number: bytes and keys come
//! in as arguments, frames and messages come out, and every violation is a
//! [`ProtocolError`] carrying the close code the connection must fail with. That keeps the
//! protocol testable without a network, property-tested, and fuzzed (`fuzz/`).
//!
//! * Inbound: [`Receiver`] = [`FrameDecoder`] (headers, limits) + [`Reassembler`]
//!   (fragments, control frames in between, UTF-8 that fails at the first bad byte).
//! * Outbound: [`write_frame`] and [`encode_message`] (fragmenting, per-frame mask keys).
//! * [`apply_mask`]: the masking kernel. [`CloseFrame`] / [`CloseCode`]: close statuses.

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod mask;
pub mod opcode;
pub mod reassembly;
pub mod receiver;
pub mod utf8;

pub use close::{CloseCode, CloseFrame, InvalidClose, MAX_CLOSE_REASON};
pub use decoder::{Frame, FrameDecoder};
pub use deflate::{DeflateConfig, DeflateParams, Deflater, Inflater};
pub use encoder::{encode_message, fragments, FragmentPlan};
pub use error::ProtocolError;
pub use frame::{header_len, write_frame, FrameHeader, MAX_CONTROL_PAYLOAD, RSV1};
pub use mask::{apply_mask, apply_mask_from, extend_masked};
pub use opcode::OpCode;
pub use reassembly::{Message, Reassembler};
pub use receiver::{Receiver, ReceiverLimits};
pub use utf8::Utf8Validator;
