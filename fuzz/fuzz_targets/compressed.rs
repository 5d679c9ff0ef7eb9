//! permessage-deflate through `Receiver::poll`: the input's messages are compressed as a
//! server would (one compressor for the connection, reset per message or not), split into
//! fragments, framed and fed in small reads to a receiver with an inflater.
//!
//! Input: byte 0 picks the read size (bits 0–4), the server's context takeover (bit 5),
//! text or binary (bit 6) and whether one compressed byte is corrupted (bit 7); byte 1 the
//! fragments per message (1–4) and byte 2 which compressed byte is corrupted; the rest,
//! split at 0xFF, are the messages (at most 8).
//!
//! Without corruption every message must come out as it went in, up to the first one over
//! the size limit (which fails with 1009) or, for text, not UTF-8 (1007). With
//! corruption anything may fail, but only with 1002, 1007 or 1009, and what comes out
//! still obeys the limits and is valid UTF-8 when it is text.
#![no_main]

use actix_ws_session::proto::{
    fragments, write_frame, DeflateConfig, Deflater, Inflater, Message, OpCode, ProtocolError,
    Receiver, ReceiverLimits, RSV1,
};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

/// Largest inflated message the receiver accepts.
const MAX_MESSAGE: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let [selector, fragmenting, corrupt_at, rest @ ..] = data else {
        return;
    };
    let chunk = usize::from(selector & 0x1F) + 1;
    let reset_each_message = selector & 0x20 != 0;
    let text = selector & 0x40 != 0;
    let corrupt = selector & 0x80 != 0;
    let fragments_per_message = usize::from(fragmenting % 4) + 1;
    let messages: Vec<&[u8]> = rest.split(|&b| b == 0xFF).take(8).collect();

    // The parameters as the client negotiates them. The server's compressor is built like
    // the client's own (the `client_*` parameters), so both reset per message or neither.
    let answer = if reset_each_message {
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    } else {
        "permessage-deflate"
    };
    let params = DeflateConfig::default()
        .accept(answer)
        .expect("a well-formed answer to the default offer");
    let mut server = Deflater::new(&params, 6);
    let mut wire = BytesMut::new();
    let mut corrupted = false;
    for message in &messages {
        let mut compressed = server.compress(message);
        if corrupt && !corrupted {
            let at = usize::from(*corrupt_at) % compressed.len();
            compressed[at] ^= 0x5A;
            corrupted = true;
        }
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        // The compressor never returns an empty payload, so `piece_len` is at least 1.
        let piece_len = compressed.len().div_ceil(fragments_per_message);
        for plan in fragments(opcode, compressed.len(), piece_len) {
            let rsv = if plan.range.start == 0 { RSV1 } else { 0 };
            let payload = &compressed[plan.range];
            write_frame(&mut wire, plan.opcode, plan.fin, rsv, payload, None);
        }
    }

    // The client's side.
    let limits = ReceiverLimits {
        max_frame_size: 1 << 20,
        max_message_size: MAX_MESSAGE,
        allowed_rsv: 0,
    };
    let mut receiver = Receiver::with_inflater(limits, Inflater::new(&params));
    let mut buf = BytesMut::new();
    let mut received = Vec::new();
    let mut failure = None;
    'feed: for piece in wire.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match receiver.poll(&mut buf) {
                Ok(Some(message)) => received.push(message),
                Ok(None) => break,
                Err(error) => {
                    failure = Some(error);
                    break 'feed;
                }
            }
        }
    }

    for message in &received {
        match message {
            Message::Text(text) => {
                assert!(std::str::from_utf8(text.as_bytes()).is_ok());
                assert!(text.len() <= MAX_MESSAGE);
            }
            Message::Binary(data) => assert!(data.len() <= MAX_MESSAGE),
            other => panic!("only data messages were sent, received {other:?}"),
        }
    }
    if let Some(error) = &failure {
        let code = error.close_code().as_u16();
        assert!(
            matches!(code, 1002 | 1007 | 1009),
            "{error:?} maps to close code {code}"
        );
    }
    if !corrupt {
        expect_exactly(&messages, text, &received, failure.as_ref());
    }
});

/// Without corruption: every message as sent, up to the first that must fail, which fails
/// with its own code.
fn expect_exactly(
    sent: &[&[u8]],
    text: bool,
    received: &[Message],
    failure: Option<&ProtocolError>,
) {
    // The close codes each message may fail with, none if it must come through. Text that
    // is both too large and not UTF-8 may fail either way: the size is checked as each
    // fragment inflates, the text as it comes out.
    let may_fail_with: Vec<Vec<u16>> = sent
        .iter()
        .map(|message| {
            let mut codes = Vec::new();
            if message.len() > MAX_MESSAGE {
                codes.push(1009);
            }
            if text && std::str::from_utf8(message).is_err() {
                codes.push(1007);
            }
            codes
        })
        .collect();
    let first_bad = may_fail_with.iter().position(|codes| !codes.is_empty());
    let expected_ok = first_bad.unwrap_or(sent.len());
    assert_eq!(received.len(), expected_ok, "messages before the failure");
    for (message, original) in received.iter().zip(sent) {
        let bytes: &[u8] = match message {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
            _ => unreachable!("checked above"),
        };
        assert_eq!(bytes, *original);
    }
    match first_bad {
        None => assert!(failure.is_none(), "unexpected {failure:?}"),
        Some(i) => {
            let code = failure
                .unwrap_or_else(|| panic!("message {i} should have failed"))
                .close_code()
                .as_u16();
            assert!(
                may_fail_with[i].contains(&code),
                "message {i} failed with {code}"
            );
        }
    }
}
