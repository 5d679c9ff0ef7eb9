//! Arbitrary bytes into `Receiver::poll`: the first byte picks the read size, the rest is
//! the stream. Small limits, so the size checks (1009) are reached as well as the protocol
//! (1002) and UTF-8 (1007) ones. Must never panic; every error must map to one of those.
#![no_main]

use actix_ws_session::proto::{Message, Receiver, ReceiverLimits};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    // Low bits: read size 1..=32; bit 5: RSV1 negotiated (as with permessage-deflate).
    let chunk = usize::from(selector & 0x1F) + 1;
    let allowed_rsv = if selector & 0x20 != 0 { 0b100 } else { 0 };
    let mut receiver = Receiver::new(ReceiverLimits {
        max_frame_size: 256,
        max_message_size: 1024,
        allowed_rsv,
    });
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match receiver.poll(&mut buf) {
                Ok(Some(message)) => check(&message),
                Ok(None) => break,
                Err(error) => {
                    let code = error.close_code().as_u16();
                    assert!(
                        matches!(code, 1002 | 1007 | 1009),
                        "{error:?} maps to close code {code}"
                    );
                    return;
                }
            }
        }
    }
});

fn check(message: &Message) {
    match message {
        Message::Text(text) => assert!(std::str::from_utf8(text.as_bytes()).is_ok()),
        Message::Binary(data) => assert!(data.len() <= 1024),
        Message::Ping(data) | Message::Pong(data) => assert!(data.len() <= 125),
        Message::Close(Some(close)) => assert!(close.code().is_sendable()),
        Message::Close(None) => {}
    }
}
