//! Verifies `SessionHandle::sink`: what is fed arrives in order (across the batches the
//! sink makes on its own), a flush resolves once written, a batch the session would refuse
//! is refused whole, the sink's backpressure keeps within the session's bound, closing the
//! sink closes the session, and a dropped sink still hands over what it held.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use actix_ws_session::{CloseCode, Error, Incoming, Initiator, Send, SINK_BATCH_MESSAGES};
use bytes::Bytes;
use common::{close_cleanly, connect_quiet, connect_with, next_event, op, quiet, until_closed};
use common::{server_reading_after, within, EchoServer, ScriptedServer, WAIT};
use futures::{SinkExt, StreamExt};

#[actix_web::test]
async fn fed_messages_arrive_in_order_across_batches() {
    let server = EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    let mut sink = session.handle.sink();
    // More than one batch's worth, so that the sink also hands over batches on its own.
    let count = SINK_BATCH_MESSAGES * 2 + 10;
    for i in 0..count {
        let message = if i % 2 == 0 {
            Send::text(format!("m{i}"))
        } else {
            Send::binary(Bytes::from(i.to_string()))
        };
        within("feed", sink.feed(message)).await.unwrap();
    }
    within("flush", sink.flush()).await.unwrap();
    for i in 0..count {
        let want = if i % 2 == 0 {
            Incoming::Text(format!("m{i}").into())
        } else {
            Incoming::Binary(Bytes::from(i.to_string()))
        };
        assert_eq!(next_event(&mut session.incoming).await, want, "message {i}");
    }
    // A message sent through the handle after the flush comes after all of them.
    session.handle.send_text("after").await.unwrap();
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Text("after".into())
    );
    let (rest, info) = close_cleanly(&mut session).await;
    assert!(rest.is_empty(), "unexpected events: {rest:?}");
    assert_eq!(info.unsent, 0);
    server.stop().await;
}

#[actix_web::test]
async fn a_flush_resolves_once_the_batch_is_written() {
    // The server reads nothing until the test says so; the frames stay in the socket
    // buffers, so "written" only needs the kernel to take them.
    let (go, go_signal) = mpsc::channel::<()>();
    let server = ScriptedServer::start(move |peer| {
        go_signal
            .recv_timeout(2 * WAIT)
            .expect("never told to read");
        let mut texts = Vec::new();
        loop {
            let f = peer.read_frame();
            match f.opcode {
                op::TEXT => texts.push(String::from_utf8(f.payload).unwrap()),
                op::PING => texts.push(format!("ping:{}", String::from_utf8(f.payload).unwrap())),
                op::CLOSE => {
                    peer.send(op::CLOSE, &f.payload);
                    peer.wait_for_eof(Duration::from_secs(5));
                    return texts;
                }
                other => panic!("unexpected opcode {other}"),
            }
        }
    });
    let mut session = connect_quiet(server.url()).await;
    let mut sink = session.handle.sink();
    for message in [
        Send::text("a"),
        Send::Ping(Bytes::from_static(b"p")),
        Send::text("b"),
    ] {
        sink.feed(message).await.unwrap();
    }
    within("flush", sink.flush()).await.unwrap();
    let stats = session.handle.stats().await.unwrap();
    assert_eq!(
        stats.queued_bytes, 0,
        "flushed, yet still queued: {stats:?}"
    );
    go.send(()).unwrap();
    let (_, info) = close_cleanly(&mut session).await;
    assert_eq!(info.unsent, 0);
    let mut seen = server.join().await;
    // A Ping may go ahead of data queued with it; the data keeps its order.
    let ping = seen
        .iter()
        .position(|m| m == "ping:p")
        .expect("the Ping was sent");
    seen.remove(ping);
    assert_eq!(seen, ["a", "b"]);
}

#[actix_web::test]
async fn a_batch_with_a_message_the_session_refuses_is_refused_whole() {
    let server = EchoServer::start();
    let bound = 1024;
    let mut session = connect_with(server.url("/echo"), quiet().max_queued_bytes(bound)).await;
    let mut sink = session.handle.sink();

    sink.feed(Send::text("first")).await.unwrap();
    sink.feed(Send::Ping(Bytes::from(vec![0u8; 126])))
        .await
        .unwrap();
    sink.feed(Send::text("third")).await.unwrap();
    assert_eq!(
        within("flush", sink.flush()).await,
        Err(Error::ControlFrameTooLong(126))
    );

    sink.feed(Send::text("small")).await.unwrap();
    sink.feed(Send::binary(vec![1u8; bound + 1])).await.unwrap();
    assert_eq!(
        within("flush", sink.flush()).await,
        Err(Error::MessageTooLarge {
            size: bound + 1,
            max: bound
        })
    );

    // Nothing of either batch went out: the next message is the first to come back, and
    // the sink goes on working.
    sink.feed(Send::text("marker")).await.unwrap();
    within("flush", sink.flush()).await.unwrap();
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Text("marker".into())
    );
    let (rest, _) = close_cleanly(&mut session).await;
    assert!(rest.is_empty(), "unexpected events: {rest:?}");
    server.stop().await;
}

#[actix_web::test]
async fn the_sink_waits_instead_of_overfilling_the_session_and_resumes_when_the_peer_reads() {
    let (go, go_signal) = mpsc::channel::<()>();
    let server = server_reading_after(go_signal);
    let bound = 64 << 10;
    let mut session = connect_with(server.url(), quiet().max_queued_bytes(bound)).await;
    let chunk = Bytes::from(vec![0xCD; 16 << 10]);
    let sender = session.handle.clone();
    // Feeds until the socket buffers and the session's queue are full; the sink must then
    // wait rather than have a batch refused. Bounded: 64 MiB at most.
    let mut sink = sender.sink();
    let mut fed = 0usize;
    let stalled = loop {
        assert!(
            fed < 4096,
            "64 MiB fed to a peer that does not read, and no wait"
        );
        match tokio::time::timeout(
            Duration::from_secs(1),
            sink.feed(Send::Binary(chunk.clone())),
        )
        .await
        {
            Ok(result) => {
                result.unwrap();
                fed += 1;
            }
            Err(_) => break fed,
        }
    };
    assert!(stalled > 0);
    let stats = session.handle.stats().await.unwrap();
    assert!(stats.queued_bytes <= bound, "{stats:?}");

    go.send(()).unwrap();
    // The stalled message was never fed (its feed was dropped): feed it again, then flush.
    within(
        "feed once the peer reads",
        sink.feed(Send::Binary(chunk.clone())),
    )
    .await
    .unwrap();
    within("flush once the peer reads", sink.flush())
        .await
        .unwrap();
    let (_, info) = close_cleanly(&mut session).await;
    assert_eq!(info.unsent, 0);
    let total = stalled + 1;
    assert_eq!(server.join().await, (total, total * chunk.len()));
}

#[actix_web::test]
async fn closing_the_sink_flushes_then_closes_the_session_normally() {
    let server = EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    let mut sink = session.handle.sink();
    for i in 0..3 {
        sink.feed(Send::text(format!("{i}"))).await.unwrap();
    }
    within("close", sink.close()).await.unwrap();
    // Closing again, once the close began, is not an error.
    within("close again", sink.close()).await.unwrap();
    let (events, info) = within("closed", until_closed(&mut session.incoming)).await;
    assert_eq!(
        events,
        (0..3)
            .map(|i| Incoming::Text(format!("{i}").into()))
            .collect::<Vec<_>>()
    );
    assert_eq!(info.code, CloseCode::NORMAL);
    assert_eq!(info.initiator, Initiator::Local);
    assert!(info.clean, "{info:?}");
    assert_eq!(info.unsent, 0);

    // After the close, the sink refuses.
    sink.feed(Send::text("late")).await.unwrap();
    assert_eq!(within("flush", sink.flush()).await, Err(Error::Closed));
    server.stop().await;
}

#[actix_web::test]
async fn a_dropped_sink_hands_over_what_it_held() {
    let server = EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    let mut sink = session.handle.sink();
    for i in 0..5 {
        sink.feed(Send::text(format!("unflushed {i}")))
            .await
            .unwrap();
    }
    drop(sink);
    let echoed: Vec<Incoming> = within(
        "the dropped sink's messages",
        (&mut session.incoming).take(5).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(
        echoed,
        (0..5)
            .map(|i| Incoming::Text(format!("unflushed {i}").into()))
            .collect::<Vec<_>>()
    );
    let (rest, _) = close_cleanly(&mut session).await;
    assert!(rest.is_empty(), "unexpected events: {rest:?}");
    server.stop().await;
}
