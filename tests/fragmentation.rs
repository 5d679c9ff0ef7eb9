//! Verifies fragmentation both ways: fragmented incoming messages with control frames in
//! between (answered at once), frames arriving in the same segment as the 101 answer, and
//! outgoing messages split at `fragment_size`.

mod common;

use std::time::Duration;

use actix_ws_session::Incoming;
use bytes::Bytes;
use common::{close_cleanly, connect_quiet, connect_with, quiet};
use common::{frame, next_event, op, raw_frame, within, ScriptedServer};

#[actix_web::test]
async fn ping_between_fragments_is_answered_before_the_message_completes() {
    let server = ScriptedServer::start(|peer| {
        peer.write(&raw_frame(false, 0, op::TEXT, None, b"Hel"));
        peer.write(&frame(op::PING, b"mid-message"));
        peer.write(&raw_frame(false, 0, op::CONTINUATION, None, b"lo, "));
        // The Pong must come before the last fragment is sent.
        let pong = peer
            .read_frame_within(Duration::from_secs(5))
            .expect("no Pong while the message was still incomplete");
        peer.write(&raw_frame(
            true,
            0,
            op::CONTINUATION,
            None,
            "wörld".as_bytes(),
        ));
        let close = peer.finish_close_handshake();
        (pong, peer.received.clone(), close)
    });
    let mut session = connect_quiet(server.url()).await;
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Ping(Bytes::from_static(b"mid-message"))
    );
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Text("Hello, wörld".into())
    );
    session.handle.send_text("ack").await.unwrap();
    let (rest, _) = close_cleanly(&mut session).await;
    assert!(rest.is_empty(), "{rest:?}");

    let (pong, received, close) = server.join().await;
    assert_eq!(pong.opcode, op::PONG);
    assert_eq!(pong.payload, b"mid-message");
    let order: Vec<(u8, Vec<u8>)> = received
        .iter()
        .map(|f| (f.opcode, f.payload.clone()))
        .collect();
    assert_eq!(
        order,
        vec![
            (op::PONG, b"mid-message".to_vec()),
            (op::TEXT, b"ack".to_vec()),
            (op::CLOSE, 1000u16.to_be_bytes().to_vec()),
        ]
    );
    assert_eq!(close.close(), Some((1000, String::new())));
}

#[actix_web::test]
async fn frames_in_the_same_write_as_the_101_are_delivered() {
    let server = ScriptedServer::start_with(
        |request| {
            let mut bytes = request.switching(&[]);
            bytes.extend(frame(op::TEXT, b"early bird"));
            bytes.extend(raw_frame(false, 0, op::BINARY, None, &[1, 2]));
            bytes.extend(raw_frame(true, 0, op::CONTINUATION, None, &[3]));
            bytes
        },
        |peer| peer.finish_close_handshake(),
    );
    let mut session = connect_quiet(server.url()).await;
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Text("early bird".into())
    );
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Binary(Bytes::from_static(&[1, 2, 3]))
    );
    close_cleanly(&mut session).await;
    assert_eq!(server.join().await.close(), Some((1000, String::new())));
}

#[actix_web::test]
async fn outgoing_messages_are_split_at_fragment_size() {
    let server = ScriptedServer::start(|peer| {
        let mut messages = Vec::new();
        for _ in 0..2 {
            let mut frames = vec![peer.read_frame()];
            while !frames.last().unwrap().fin {
                frames.push(peer.read_frame());
            }
            messages.push(frames);
        }
        peer.finish_close_handshake();
        messages
    });
    let mut session = connect_with(server.url(), quiet().fragment_size(1000)).await;
    let binary: Vec<u8> = (0..3500u32).map(|i| (i * 7 % 256) as u8).collect();
    // 2 500 bytes of text whose 2-byte characters straddle fragment boundaries.
    let text: String = "aé".repeat(833) + "z";
    assert_eq!(text.len(), 2500);
    session.handle.send_binary(binary.clone()).await.unwrap();
    session.handle.send_text(text.clone()).await.unwrap();
    close_cleanly(&mut session).await;

    let messages = server.join().await;
    let check = |frames: &[common::ClientFrame], opcode: u8, lens: &[usize]| {
        let got: Vec<(u8, bool, usize)> = frames
            .iter()
            .map(|f| (f.opcode, f.fin, f.payload.len()))
            .collect();
        let want: Vec<(u8, bool, usize)> = lens
            .iter()
            .enumerate()
            .map(|(i, len)| {
                let code = if i == 0 { opcode } else { op::CONTINUATION };
                (code, i + 1 == lens.len(), *len)
            })
            .collect();
        assert_eq!(got, want);
        assert!(frames.iter().all(|f| f.mask.is_some()), "unmasked fragment");
        frames
            .iter()
            .flat_map(|f| f.payload.clone())
            .collect::<Vec<u8>>()
    };
    assert_eq!(
        check(&messages[0], op::BINARY, &[1000, 1000, 1000, 500]),
        binary
    );
    assert_eq!(
        check(&messages[1], op::TEXT, &[1000, 1000, 500]),
        text.into_bytes()
    );
}

#[actix_web::test]
async fn a_ping_goes_out_between_the_fragments_of_a_large_message() {
    let server = ScriptedServer::start(|peer| {
        let mut order = Vec::new();
        loop {
            let f = peer.read_frame();
            order.push((f.opcode, f.fin));
            if (f.opcode == op::BINARY || f.opcode == op::CONTINUATION) && f.fin {
                break;
            }
        }
        peer.finish_close_handshake();
        order
    });
    let mut session = connect_with(server.url(), quiet().fragment_size(1024)).await;
    let addr = session.handle.addr().clone();
    // 4 MiB in 1 KiB fragments: far more than one write batch.
    let big = addr.send(actix_ws_session::Send::binary(vec![5u8; 4 << 20]));
    let ping = addr.send(actix_ws_session::Send::Ping(Bytes::from_static(b"urgent")));
    within("ping", ping).await.unwrap().unwrap();
    within("big message", big).await.unwrap().unwrap();
    close_cleanly(&mut session).await;
    let order = server.join().await;
    let ping_at = order
        .iter()
        .position(|(opcode, _)| *opcode == op::PING)
        .expect("the ping was not sent before the message ended");
    // Control frames have priority: the ping may even go out before the first fragment
    // (both were queued before the first write), but never behind the whole message.
    assert!(ping_at < order.len() - 1, "{ping_at} of {}", order.len());
    assert_eq!(order.len(), 4096 + 1);
}
