//! Verifies backpressure both ways. Outbound: with a bounded queue, awaited sends wait while
//! the peer does not read and complete once it does; a message over the bound is refused;
//! and when the peer vanishes, waiting sends fail instead of hanging and unwritten messages
//! are counted in `CloseInfo::unsent`. Inbound: a stream consumer that falls behind makes
//! the session stop reading until it catches up.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::time::Duration;

use actix::Addr;
use actix_ws_session::{ClientSession, Error, Incoming, Send};
use bytes::Bytes;
use common::{close_cleanly, connect_with, next_event, op, quiet, until_closed, within};
use common::{server_reading_after, EchoServer, ScriptedServer, WAIT};

type Pending = Pin<Box<dyn Future<Output = Result<Result<(), Error>, actix::MailboxError>>>>;

/// Sends `chunk` repeatedly (awaiting each) until one send does not complete within 1 s;
/// returns how many completed and the one still pending. Bounded: at most 2 048 sends.
async fn fill_until_pending(addr: &Addr<ClientSession>, chunk: &Bytes) -> (usize, Pending) {
    for completed in 0..2048 {
        let mut send: Pending = Box::pin(addr.send(Send::Binary(chunk.clone())));
        match tokio::time::timeout(Duration::from_secs(1), &mut send).await {
            Ok(reply) => assert_eq!(reply.unwrap(), Ok(()), "send {completed}"),
            Err(_) => return (completed, send),
        }
    }
    panic!(
        "{} MiB sent to a peer that does not read, and no send ever waited",
        (2048 * chunk.len()) >> 20
    );
}

#[actix_web::test]
async fn sends_wait_while_the_peer_does_not_read_and_resume_when_it_does() {
    let (go, go_signal) = mpsc::channel::<()>();
    let server = server_reading_after(go_signal);
    let bound = 64 << 10;
    let mut session = connect_with(server.url(), quiet().max_queued_bytes(bound)).await;
    let addr = session.handle.addr().clone();
    let chunk = Bytes::from(vec![0xAB; 32 << 10]);
    let (completed, mut first_waiting) = fill_until_pending(&addr, &chunk).await;
    assert!(completed > 0);

    // More sends queue up behind it; none completes while the peer does not read.
    let mut more: Vec<Pending> = (0..2)
        .map(|_| Box::pin(addr.send(Send::Binary(chunk.clone()))) as Pending)
        .collect();
    for send in more.iter_mut() {
        let early = tokio::time::timeout(Duration::from_millis(500), send).await;
        assert!(
            early.is_err(),
            "a send completed while nobody read: {early:?}"
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut first_waiting)
            .await
            .is_err(),
        "the waiting send completed while nobody read"
    );
    let stats = session.handle.stats().await.unwrap();
    assert!(stats.queued_bytes > 0, "{stats:?}");
    assert!(stats.queued_bytes <= bound, "{stats:?}");

    go.send(()).unwrap();
    assert_eq!(
        within("the waiting send once the peer reads", first_waiting)
            .await
            .unwrap(),
        Ok(())
    );
    for send in more {
        assert_eq!(within("queued send", send).await.unwrap(), Ok(()));
    }
    let (_, info) = close_cleanly(&mut session).await;
    assert_eq!(info.unsent, 0);

    let total = completed + 3;
    assert_eq!(server.join().await, (total, total * chunk.len()));
}

#[actix_web::test]
async fn a_message_over_the_bound_is_refused() {
    let server = EchoServer::start();
    let bound = 64 << 10;
    let mut session = connect_with(server.url("/echo"), quiet().max_queued_bytes(bound)).await;
    assert_eq!(
        session.handle.send_binary(vec![1u8; bound + 1]).await,
        Err(Error::MessageTooLarge {
            size: bound + 1,
            max: bound
        })
    );
    assert_eq!(
        session.handle.send_text("x".repeat(bound + 1)).await,
        Err(Error::MessageTooLarge {
            size: bound + 1,
            max: bound
        })
    );
    // Exactly the bound fits, and the session is still fine.
    session.handle.send_binary(vec![2u8; bound]).await.unwrap();
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Binary(Bytes::from(vec![2u8; bound]))
    );
    close_cleanly(&mut session).await;
    server.stop().await;
}

/// Fills the socket of a peer that does not read until a send waits, adds `extra`
/// fire-and-forget 16 KiB sends, then lets the peer vanish: the waiting send must fail
/// and `unsent` must count it and every `extra` message.
async fn peer_vanishes_with(extra: usize) {
    let (go, go_signal) = mpsc::channel::<()>();
    let server = ScriptedServer::start(move |_peer| {
        go_signal
            .recv_timeout(2 * WAIT)
            .expect("the test never let the server go");
        // Returning drops the socket with unread data: the client sees a reset.
    });
    let mut session = connect_with(server.url(), quiet().max_queued_bytes(64 << 10)).await;
    let addr = session.handle.addr().clone();
    let chunk = Bytes::from(vec![0xCD; 16 << 10]);
    let (_, waiting) = fill_until_pending(&addr, &chunk).await;
    for _ in 0..extra {
        addr.do_send(Send::Binary(chunk.clone()));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    go.send(()).unwrap();
    server.join().await;
    match within("the waiting send after the peer vanished", waiting).await {
        Ok(Ok(())) => panic!("a send to a vanished peer reported success"),
        Ok(Err(error)) => assert!(
            matches!(error, Error::Closed | Error::ConnectionLost(_)),
            "{error:?}"
        ),
        Err(_mailbox) => {} // the session's reply channel was dropped: also an error
    }
    let (_, info) = until_closed(&mut session.incoming).await;
    assert_eq!(info.code.as_u16(), 1006, "{info:?}");
    assert!(!info.clean);
    // Every send before the waiting one was answered Ok, so it was written; the waiting
    // one and the `extra` ones were accepted and never written.
    assert_eq!(info.unsent, 1 + extra, "{info:?}");
    assert_eq!(session.handle.send_text("after").await, Err(Error::Closed));
}

#[actix_web::test]
async fn waiting_sends_fail_when_the_peer_vanishes_and_unsent_is_counted() {
    // With 16 KiB messages and a 64 KiB bound, the waiting send and 3 more are all
    // handed to the codec actor.
    peer_vanishes_with(3).await;
}

#[actix_web::test]
async fn unsent_counts_messages_still_waiting_for_queue_room() {
    // 2 of the 5 extra messages are still in the session's waiting room when the socket
    // fails; they were accepted and never written.
    peer_vanishes_with(5).await;
}

/// A stream consumer that falls behind makes the session stop reading: the peer's writes
/// block (TCP flow control) instead of the client buffering without bound, and everything
/// arrives, in order, once the consumer catches up.
#[actix_web::test]
async fn a_consumer_that_falls_behind_stops_the_reading() {
    use std::io::{ErrorKind, Write as _};
    const FRAMES: usize = 128;
    const SIZE: usize = 256 * 1024;
    let (blocked_tx, blocked_rx) = mpsc::channel();
    let server = ScriptedServer::start(move |peer| {
        let frame = common::raw_frame(true, 0, op::BINARY, None, &vec![7u8; SIZE]);
        let mut stream = peer.stream().try_clone().expect("clone socket");
        stream
            .set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut blocked_at = None;
        for i in 0..FRAMES {
            let mut written = 0;
            while written < frame.len() {
                match stream.write(&frame[written..]) {
                    Ok(n) => written += n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        if blocked_at.is_none() {
                            blocked_at = Some(i);
                            let _ = blocked_tx.send(i);
                            stream.set_write_timeout(Some(WAIT)).unwrap();
                        }
                    }
                    Err(e) => panic!("server write: {e}"),
                }
            }
        }
        peer.finish_close_handshake();
        blocked_at
    });
    let config = quiet().max_incoming_bytes(1 << 20);
    let mut session = connect_with(server.url(), config).await;
    // Nobody reads the stream: the server must get stuck well before sending everything.
    let blocked = actix_web::rt::task::spawn_blocking(move || blocked_rx.recv_timeout(WAIT))
        .await
        .unwrap();
    let blocked = blocked.expect("the server's writes never blocked: the client kept reading");
    assert!(blocked < FRAMES, "blocked at frame {blocked}");
    // Now catch up: every message arrives, intact and in order.
    for i in 0..FRAMES {
        match next_event(&mut session.incoming).await {
            Incoming::Binary(bytes) => {
                assert_eq!(bytes.len(), SIZE, "message {i}");
                assert!(bytes.iter().all(|&b| b == 7), "message {i}");
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
    close_cleanly(&mut session).await;
    assert_eq!(server.join().await, Some(blocked));
}
