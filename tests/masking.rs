//! Verifies client frame masking on the wire: on by default with a fresh key per frame,
//! switched off and on again on a live session with `SetMasking` (also between sends that
//! go out in one write batch), and off from the start with `Config::masking(false)`.

mod common;

use std::collections::HashSet;

use actix_ws_session::{Error, Send, SetMasking};
use common::{close_cleanly, connect_quiet, connect_with, op, quiet, within};
use common::{ClientFrame, ScriptedServer};

fn read_texts(peer: &mut common::Peer, n: usize) -> Vec<ClientFrame> {
    (0..n)
        .map(|_| {
            let frame = peer.read_frame();
            assert_eq!(frame.opcode, op::TEXT, "{frame:?}");
            frame
        })
        .collect()
}

#[actix_web::test]
async fn masking_is_on_by_default_and_can_be_toggled() {
    let server = ScriptedServer::start(|peer| {
        let first = read_texts(peer, 6);
        let plain = read_texts(peer, 2);
        let again = read_texts(peer, 2);
        let close = peer.finish_close_handshake();
        (first, plain, again, close)
    });
    let mut session = connect_quiet(server.url()).await;
    let h = session.handle.clone();
    for i in 0..6 {
        h.send_text(format!("masked message {i}")).await.unwrap();
    }
    h.set_masking(false).await.unwrap();
    for i in 0..2 {
        h.send_text(format!("plain message {i}")).await.unwrap();
    }
    // Through the actor message too.
    within("SetMasking(true)", h.addr().send(SetMasking(true)))
        .await
        .unwrap()
        .unwrap();
    for i in 0..2 {
        h.send_text(format!("masked again {i}")).await.unwrap();
    }
    close_cleanly(&mut session).await;

    let (first, plain, again, close) = server.join().await;
    for (i, f) in first.iter().enumerate() {
        assert!(f.mask.is_some(), "frame {i} not masked: {f:?}");
        assert_eq!(f.text(), format!("masked message {i}"));
    }
    let keys: HashSet<[u8; 4]> = first.iter().filter_map(|f| f.mask).collect();
    assert_eq!(keys.len(), first.len(), "mask keys were reused: {keys:?}");
    assert!(
        first.iter().any(|f| f.wire_payload != f.payload),
        "masked payloads went out in the clear"
    );
    for (i, f) in plain.iter().enumerate() {
        assert_eq!(f.mask, None, "frame sent after SetMasking(false) is masked");
        assert_eq!(f.wire_payload, format!("plain message {i}").into_bytes());
    }
    for (i, f) in again.iter().enumerate() {
        assert!(f.mask.is_some(), "frame after SetMasking(true) not masked");
        assert_eq!(f.text(), format!("masked again {i}"));
    }
    assert!(close.mask.is_some(), "Close frame not masked");
}

#[actix_web::test]
async fn masking_off_from_the_config() {
    let server = ScriptedServer::start(|peer| {
        let texts = read_texts(peer, 1);
        let close = peer.finish_close_handshake();
        (texts, close)
    });
    let mut session = connect_with(server.url(), quiet().masking(false)).await;
    session.handle.send_text("in the clear").await.unwrap();
    close_cleanly(&mut session).await;
    // Once closed, masking can no longer be changed.
    assert_eq!(session.handle.set_masking(true).await, Err(Error::Closed));

    let (texts, close) = server.join().await;
    assert_eq!(texts[0].mask, None);
    assert_eq!(texts[0].wire_payload, b"in the clear");
    assert_eq!(close.mask, None);
    assert_eq!(close.close(), Some((1000, String::new())));
}

#[actix_web::test]
async fn a_masking_change_between_unawaited_sends_applies_from_the_next_send() {
    let server = ScriptedServer::start(|peer| {
        let texts = read_texts(peer, 6);
        let close = peer.finish_close_handshake();
        (texts, close)
    });
    let mut session = connect_quiet(server.url()).await;
    let addr = session.handle.addr().clone();
    // Nothing is awaited: all six messages are queued before the codec writes any of them.
    let groups = [("masked", true), ("plain", false), ("again", true)];
    for (name, masking) in groups {
        addr.do_send(SetMasking(masking));
        for i in 0..2 {
            addr.do_send(Send::text(format!("{name} {i}")));
        }
    }
    close_cleanly(&mut session).await;

    let (texts, close) = server.join().await;
    for (frame, (name, masked)) in texts.iter().zip(groups.iter().flat_map(|g| [g, g])) {
        assert!(frame.text().starts_with(name), "{frame:?}");
        assert_eq!(frame.mask.is_some(), *masked, "{frame:?}");
    }
    assert!(close.mask.is_some(), "Close frame follows the last setting");
}
