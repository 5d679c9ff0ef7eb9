//! The outbound side: messages to frames, fragmented and masked as told.

use std::ops::Range;

use bytes::BytesMut;

use super::frame::write_frame;
use super::opcode::OpCode;

/// One frame of an outgoing message: its opcode, FIN bit and the slice of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentPlan {
    /// `Text`/`Binary` for the first frame, `Continuation` after.
    pub opcode: OpCode,
    /// Set on the last frame.
    pub fin: bool,
    /// The bytes of the message this frame carries.
    pub range: Range<usize>,
}

/// Splits a message of `len` bytes into frames of at most `fragment_size` bytes.
///
/// A message that fits (or `fragment_size == 0`, meaning "never fragment") is one frame; an
/// empty message is one empty frame.
pub fn fragments(
    opcode: OpCode,
    len: usize,
    fragment_size: usize,
) -> impl Iterator<Item = FragmentPlan> {
    let step = if fragment_size == 0 {
        len.max(1)
    } else {
        fragment_size
    };
    let count = if len == 0 { 1 } else { len.div_ceil(step) };
    (0..count).map(move |i| {
        let start = i * step;
        let end = (start + step).min(len);
        FragmentPlan {
            opcode: if i == 0 { opcode } else { OpCode::Continuation },
            fin: i + 1 == count,
            range: start..end,
        }
    })
}

/// Appends a whole message to `dst` as frames of at most `fragment_size` bytes (0: one
/// frame), asking `next_mask` for each frame's mask key (`None`: send it unmasked).
pub fn encode_message(
    dst: &mut BytesMut,
    opcode: OpCode,
    payload: &[u8],
    fragment_size: usize,
    mut next_mask: impl FnMut() -> Option<[u8; 4]>,
) {
    for plan in fragments(opcode, payload.len(), fragment_size) {
        write_frame(
            dst,
            plan.opcode,
            plan.fin,
            0,
            &payload[plan.range],
            next_mask(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::reassembly::Message;
    use crate::proto::receiver::{Receiver, ReceiverLimits};

    #[test]
    fn fragments_cover_the_message_in_order() {
        let plans: Vec<_> = fragments(OpCode::Text, 10, 4).collect();
        assert_eq!(
            plans,
            vec![
                FragmentPlan {
                    opcode: OpCode::Text,
                    fin: false,
                    range: 0..4
                },
                FragmentPlan {
                    opcode: OpCode::Continuation,
                    fin: false,
                    range: 4..8
                },
                FragmentPlan {
                    opcode: OpCode::Continuation,
                    fin: true,
                    range: 8..10
                },
            ]
        );
        assert_eq!(fragments(OpCode::Binary, 0, 4).count(), 1);
        assert_eq!(fragments(OpCode::Binary, 8, 4).count(), 2);
        assert_eq!(fragments(OpCode::Binary, 100, 0).count(), 1);
    }

    #[test]
    fn each_frame_gets_its_own_mask_bit_and_key() {
        let mut dst = BytesMut::new();
        let mut keys = vec![Some([1, 2, 3, 4]), None, Some([5, 6, 7, 8])].into_iter();
        encode_message(&mut dst, OpCode::Binary, &[0u8; 9], 3, || {
            keys.next().flatten()
        });
        // frame 1: masked, frame 2: not, frame 3: masked
        assert_eq!(dst[1] & 0x80, 0x80);
        assert_eq!(&dst[2..6], &[1, 2, 3, 4]);
        assert_eq!(&dst[6..9], &[1, 2, 3]);
        assert_eq!(dst[10] & 0x80, 0);
        assert_eq!(dst[14] & 0x80, 0x80);
    }

    #[test]
    fn unmasked_fragments_decode_back_to_the_message() {
        let mut dst = BytesMut::new();
        encode_message(
            &mut dst,
            OpCode::Text,
            "hello fragmented world".as_bytes(),
            5,
            || None,
        );
        let mut receiver = Receiver::new(ReceiverLimits {
            max_frame_size: 100,
            max_message_size: 100,
            allowed_rsv: 0,
        });
        assert_eq!(
            receiver.poll(&mut dst),
            Ok(Some(Message::Text("hello fragmented world".into())))
        );
    }
}
