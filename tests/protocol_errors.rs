//! Verifies that every RFC 6455 violation (and configured size limit) a scripted server
//! commits fails the connection with the right close code on the wire, and is reported to
//! the user as `Closed` with that code and `Error::Protocol`.

mod common;

use actix_ws_session::proto::{OpCode, ProtocolError};
use actix_ws_session::{Config, Error, Initiator};
use common::until_closed;
use common::{close_payload, connect_quiet_to, connect_with, frame, frame_head, op, raw_frame};
use common::{ClientFrame, ScriptedServer};

/// The server writes `bytes` (one write), then reads until the client's Close and ends the
/// socket. Checks the code on the wire, the reported code, and the error variant.
async fn violation(
    bytes: Vec<u8>,
    config: Config,
    code: u16,
    is_expected: impl Fn(&ProtocolError) -> bool,
) {
    let server = ScriptedServer::start(move |peer| {
        peer.write(&bytes);
        let close = peer.read_until_close();
        peer.wait_for_eof(std::time::Duration::from_secs(5));
        close
    });
    let mut session = connect_with(server.url(), config.ping_interval(None)).await;
    let (_, info) = until_closed(&mut session.incoming).await;
    assert_eq!(info.code.as_u16(), code, "{info:?}");
    assert_eq!(info.initiator, Initiator::Local, "{info:?}");
    assert!(
        !info.clean,
        "a failed connection is not a clean close: {info:?}"
    );
    match &info.error {
        Some(Error::Protocol(error)) => {
            assert!(is_expected(error), "unexpected protocol error {error:?}");
            assert_eq!(error.close_code().as_u16(), code);
        }
        other => panic!("expected Error::Protocol, got {other:?}"),
    }
    let close: ClientFrame = server.join().await;
    assert!(close.mask.is_some(), "the client's Close was not masked");
    assert_eq!(close.close().map(|(c, _)| c), Some(code), "{close:?}");
    // The session refuses further sends.
    assert_eq!(session.handle.send_text("late").await, Err(Error::Closed));
}

fn text(fin: bool, payload: &[u8]) -> Vec<u8> {
    raw_frame(fin, 0, op::TEXT, None, payload)
}

fn cont(fin: bool, payload: &[u8]) -> Vec<u8> {
    raw_frame(fin, 0, op::CONTINUATION, None, payload)
}

#[actix_web::test]
async fn reserved_opcode() {
    let bytes = raw_frame(true, 0, 0x3, None, b"");
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::ReservedOpcode(3))
    })
    .await;
}

#[actix_web::test]
async fn reserved_control_opcode() {
    let bytes = raw_frame(true, 0, 0xB, None, b"");
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::ReservedOpcode(0xB))
    })
    .await;
}

#[actix_web::test]
async fn rsv_bit_without_extension() {
    let bytes = raw_frame(true, 0b100, op::TEXT, None, b"x");
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::ReservedBits(_))
    })
    .await;
}

#[actix_web::test]
async fn masked_server_frame() {
    let bytes = raw_frame(true, 0, op::TEXT, Some([1, 2, 3, 4]), b"masked");
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::MaskedFrame)
    })
    .await;
}

#[actix_web::test]
async fn control_frame_over_125_bytes() {
    let bytes = frame(op::PING, &[b'p'; 126]);
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::ControlFrameTooLong(126))
    })
    .await;
}

#[actix_web::test]
async fn fragmented_ping() {
    let bytes = raw_frame(false, 0, op::PING, None, b"p");
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::FragmentedControlFrame(OpCode::Ping))
    })
    .await;
}

#[actix_web::test]
async fn continuation_without_a_start() {
    let bytes = cont(true, b"orphan");
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::UnexpectedContinuation)
    })
    .await;
}

#[actix_web::test]
async fn new_text_frame_inside_a_fragmented_message() {
    let mut bytes = text(false, b"first");
    bytes.extend(text(true, b"second"));
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::ExpectedContinuation(OpCode::Text))
    })
    .await;
}

#[actix_web::test]
async fn invalid_utf8_text() {
    let bytes = text(true, b"ok \xff not ok");
    violation(bytes, Config::default(), 1007, |e| {
        matches!(e, ProtocolError::InvalidUtf8 { .. })
    })
    .await;
}

#[actix_web::test]
async fn invalid_utf8_split_across_fragments() {
    // "€" is E2 82 AC: the first fragment ends inside it, the next one breaks it.
    let mut bytes = text(false, b"price: \xe2\x82");
    bytes.extend(cont(true, b"A"));
    violation(bytes, Config::default(), 1007, |e| {
        matches!(e, ProtocolError::InvalidUtf8 { .. })
    })
    .await;
}

#[actix_web::test]
async fn invalid_utf8_fails_before_the_message_ends() {
    // The bad byte is in the first fragment; the message is never finished.
    let bytes = text(false, b"\xc0\xaf");
    violation(bytes, Config::default(), 1007, |e| {
        matches!(e, ProtocolError::InvalidUtf8 { .. })
    })
    .await;
}

#[actix_web::test]
async fn close_with_one_byte_payload() {
    let bytes = frame(op::CLOSE, &[0x03]);
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::CloseFrameTooShort)
    })
    .await;
}

#[actix_web::test]
async fn close_with_a_code_that_may_not_be_sent() {
    let bytes = frame(op::CLOSE, &close_payload(1005, ""));
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::InvalidCloseCode(1005))
    })
    .await;
}

#[actix_web::test]
async fn close_with_code_below_1000() {
    let bytes = frame(op::CLOSE, &close_payload(999, ""));
    violation(bytes, Config::default(), 1002, |e| {
        matches!(e, ProtocolError::InvalidCloseCode(999))
    })
    .await;
}

#[actix_web::test]
async fn close_reason_not_utf8() {
    let mut payload = close_payload(1000, "");
    payload.extend_from_slice(b"\xff\xfe");
    let bytes = frame(op::CLOSE, &payload);
    violation(bytes, Config::default(), 1007, |e| {
        matches!(e, ProtocolError::InvalidCloseReason)
    })
    .await;
}

#[actix_web::test]
async fn frame_over_max_frame_size() {
    // Only the header is sent: the limit applies as soon as it arrives.
    let bytes = frame_head(true, 0, op::BINARY, None, 2048);
    violation(bytes, Config::default().max_frame_size(1024), 1009, |e| {
        matches!(
            e,
            ProtocolError::FrameTooLarge {
                size: 2048,
                max: 1024
            }
        )
    })
    .await;
}

#[actix_web::test]
async fn message_over_max_message_size_across_fragments() {
    let mut bytes = raw_frame(false, 0, op::BINARY, None, &[1; 700]);
    bytes.extend(cont(true, &[2; 700]));
    violation(bytes, Config::default().max_message_size(1024), 1009, |e| {
        matches!(e, ProtocolError::MessageTooLarge { max: 1024, .. })
    })
    .await;
}

#[actix_web::test]
async fn violation_is_reported_to_an_actor_recipient_too() {
    let server = ScriptedServer::start(|peer| {
        peer.send(op::TEXT, b"fine");
        peer.write(&text(true, b"\xff"));
        let close = peer.read_until_close();
        peer.wait_for_eof(std::time::Duration::from_secs(5));
        close
    });
    let (recipient, mut events) = common::recorder();
    let _connection = connect_quiet_to(server.url(), recipient).await;
    let (before, info) = until_closed(&mut events).await;
    assert_eq!(
        before,
        vec![actix_ws_session::Incoming::Text("fine".into())]
    );
    assert_eq!(info.code.as_u16(), 1007, "{info:?}");
    assert!(
        matches!(
            info.error,
            Some(Error::Protocol(ProtocolError::InvalidUtf8 { .. }))
        ),
        "{info:?}"
    );
    assert_eq!(server.join().await.close().map(|(c, _)| c), Some(1007));
}
