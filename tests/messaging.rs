//! Verifies message exchange against a real echo server: text and binary (empty to 16 MiB),
//! ordering, the actor (`connect(recipient)`) and `Session::run` APIs, and that a user actor
//! blocking on the session from its `Incoming` handler does not deadlock.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use actix::prelude::*;
use actix_ws_session::{ClientSession, Close, Incoming, Send};
use bytes::Bytes;
use common::ScriptedServer;
use common::{close_cleanly, close_with, connect_quiet, connect_quiet_to, quiet};
use common::{frame, next_event, op, recorder, until_closed, within, EchoServer};

#[actix_web::test]
async fn text_and_binary_echo_including_empty_messages() {
    let server = EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    let h = &session.handle;
    h.send_text("").await.unwrap();
    h.send_text("héllo, wörld ✓").await.unwrap();
    h.send_binary(Vec::new()).await.unwrap();
    h.send_binary(vec![0u8, 1, 2, 255]).await.unwrap();

    let expected = [
        Incoming::Text("".into()),
        Incoming::Text("héllo, wörld ✓".into()),
        Incoming::Binary(Bytes::new()),
        Incoming::Binary(Bytes::from_static(&[0, 1, 2, 255])),
    ];
    for want in expected {
        assert_eq!(next_event(&mut session.incoming).await, want);
    }
    let (rest, _) = close_cleanly(&mut session).await;
    assert!(rest.is_empty(), "unexpected events: {rest:?}");
    server.stop().await;
}

#[actix_web::test]
async fn sixteen_mib_binary_round_trips_intact() {
    let server = EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    let size = 16 << 20;
    let data: Bytes = (0..size)
        .map(|i: usize| (i.wrapping_mul(31) ^ (i >> 11)) as u8)
        .collect::<Vec<u8>>()
        .into();
    within("16 MiB send", session.handle.send_binary(data.clone()))
        .await
        .unwrap();
    match next_event(&mut session.incoming).await {
        Incoming::Binary(echo) => {
            assert_eq!(echo.len(), size);
            let first_bad = echo.iter().zip(data.iter()).position(|(a, b)| a != b);
            assert_eq!(first_bad, None, "echo differs from what was sent");
        }
        other => panic!("expected the binary echo, got {other:?}"),
    }
    close_cleanly(&mut session).await;
    server.stop().await;
}

/// Read buffers are reused once the messages sliced from them are dropped: messages the
/// user still holds must keep their bytes, whatever arrives after them.
#[actix_web::test]
async fn held_large_messages_keep_their_bytes_while_buffers_are_reused() {
    let server = EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    let sizes = [70 << 10, 300 << 10, 1 << 20, 5 << 20, 64 << 10, 200 << 10];
    let pattern =
        |i: usize, len: usize| -> Vec<u8> { (0..len).map(|j| (i * 37 + j / 4096) as u8).collect() };
    let mut held = Vec::new();
    for round in 0..3 {
        for (k, &len) in sizes.iter().enumerate() {
            let i = round * sizes.len() + k;
            within("send", session.handle.send_binary(pattern(i, len)))
                .await
                .unwrap();
            match next_event(&mut session.incoming).await {
                // Keep every other message; drop the rest so their buffers can be reused.
                Incoming::Binary(echo) if i % 2 == 0 => held.push((i, echo)),
                Incoming::Binary(echo) => assert_eq!(echo, pattern(i, len), "message {i}"),
                other => panic!("expected a binary echo, got {other:?}"),
            }
        }
    }
    for (i, echo) in &held {
        let len = sizes[i % sizes.len()];
        assert!(echo[..] == pattern(*i, len)[..], "held message {i} changed");
    }
    close_cleanly(&mut session).await;
    server.stop().await;
}

/// Messages of many sizes, their bytes written in pieces that end anywhere (inside headers
/// and payloads, at 8 KiB and just past it, in bursts and after pauses), so that reads
/// fill a first 8 KiB, continue in the free tail of a buffer whose head the user still
/// holds, or move a partial frame to a new buffer. Every other message is kept until the
/// end: all must arrive whole, in order, and keep their bytes.
#[actix_web::test]
async fn kept_messages_stay_intact_whatever_the_read_boundaries() {
    const SIZES: [usize; 9] = [1, 125, 126, 1000, 3000, 8190, 9000, 20_000, 70_000];
    const PIECES: [usize; 8] = [8192, 5000, 8193, 1, 65_536, 2, 30_000, 700];
    // The bytes of message `i`: its size from SIZES, a pattern that differs per message.
    let bytes_of = |i: usize| -> Vec<u8> {
        let len = SIZES[i % SIZES.len()];
        (0..len)
            .map(|j| (i * 131 + j * 7 + j / 251) as u8)
            .collect()
    };
    let count = 3 * SIZES.len();
    let wire: Vec<u8> = (0..count)
        .flat_map(|i| frame(op::BINARY, &bytes_of(i)))
        .collect();
    let server = ScriptedServer::start(move |peer| {
        let mut rest = &wire[..];
        for k in 0.. {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(PIECES[k % PIECES.len()].min(rest.len()));
            peer.write(piece);
            rest = tail;
            if k % 3 == 2 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        peer.finish_close_handshake()
    });
    let mut session = connect_quiet(server.url()).await;
    let mut kept = Vec::new();
    for i in 0..count {
        match next_event(&mut session.incoming).await {
            Incoming::Binary(message) if i % 2 == 0 => kept.push((i, message)),
            Incoming::Binary(message) => {
                assert!(message[..] == bytes_of(i)[..], "message {i}")
            }
            other => panic!("expected binary message {i}, got {other:?}"),
        }
    }
    for (i, message) in &kept {
        assert!(message[..] == bytes_of(*i)[..], "kept message {i} changed");
    }
    let (rest, _) = close_cleanly(&mut session).await;
    assert!(rest.is_empty(), "unexpected events: {rest:?}");
    let close = server.join().await;
    assert_eq!(close.opcode, op::CLOSE);
}

/// After a large frame the reader reads small first (for the next header); a burst of
/// small messages after large ones must still arrive whole and in order.
#[actix_web::test]
async fn small_messages_after_large_ones_arrive_in_order() {
    let server = EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    let addr = session.handle.addr().clone();
    for round in 0..3u8 {
        addr.do_send(Send::binary(vec![round; 1 << 20]));
        for i in 0..300 {
            addr.do_send(Send::text(format!("r{round} m{i}")));
        }
    }
    for round in 0..3u8 {
        match next_event(&mut session.incoming).await {
            Incoming::Binary(big) => {
                assert_eq!(big.len(), 1 << 20);
                assert!(big.iter().all(|&b| b == round), "round {round} corrupted");
            }
            other => panic!("expected the large binary echo, got {other:?}"),
        }
        for i in 0..300 {
            let want = format!("r{round} m{i}");
            assert_eq!(
                next_event(&mut session.incoming).await,
                Incoming::Text(want.into())
            );
        }
    }
    close_cleanly(&mut session).await;
    server.stop().await;
}

#[actix_web::test]
async fn many_messages_arrive_in_order() {
    let server = EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    let addr = session.handle.addr().clone();
    let count = 1000;
    // Fire-and-forget and awaited sends, interleaved: order must hold across both.
    for i in 0..count {
        let message = Send::text(format!("m{i}"));
        if i % 10 == 0 {
            within("send", addr.send(message)).await.unwrap().unwrap();
        } else {
            addr.do_send(message);
        }
    }
    for i in 0..count {
        match next_event(&mut session.incoming).await {
            Incoming::Text(text) => assert_eq!(&*text, format!("m{i}")),
            other => panic!("expected text m{i}, got {other:?}"),
        }
    }
    let (rest, info) = close_with(&mut session, 1000, "").await;
    assert!(rest.is_empty(), "unexpected events: {rest:?}");
    assert_eq!(info.unsent, 0);
    server.stop().await;
}

/// Pipelined traffic: 32 messages in flight, each echo answered with the next message, so
/// write batches wait for the reads in between. Every echo must come back in order, and a
/// Close queued right behind the last batch must still follow it out.
#[actix_web::test]
async fn replies_to_a_stream_of_echoes_arrive_in_order() {
    let server = EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    let addr = session.handle.addr().clone();
    let (count, window) = (2000, 32);
    for i in 0..window {
        addr.do_send(Send::text(format!("p{i}")));
    }
    let mut next = window;
    for i in 0..count {
        match next_event(&mut session.incoming).await {
            Incoming::Text(text) => assert_eq!(&*text, format!("p{i}")),
            other => panic!("expected text p{i}, got {other:?}"),
        }
        if next < count {
            addr.do_send(Send::text(format!("p{next}")));
            next += 1;
        }
    }
    addr.do_send(Send::text("last"));
    let (rest, info) = close_with(&mut session, 1000, "").await;
    assert_eq!(rest, vec![Incoming::Text("last".into())]);
    assert!(info.clean, "close was not clean: {info:?}");
    assert_eq!(info.unsent, 0);
    server.stop().await;
}

#[actix_web::test]
async fn actor_recipient_api_delivers_messages_and_closed() {
    let server = EchoServer::start();
    let (recipient, mut events) = recorder();
    let connection = connect_quiet_to(server.url("/echo"), recipient).await;
    let session = connection.session;
    within("send", session.send(Send::text("to the actor")))
        .await
        .unwrap()
        .unwrap();
    within("send", session.send(Send::binary(vec![7u8; 3])))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next_event(&mut events).await,
        Incoming::Text("to the actor".into())
    );
    assert_eq!(
        next_event(&mut events).await,
        Incoming::Binary(Bytes::from_static(&[7, 7, 7]))
    );
    within("close", session.send(Close::new(1000, "done")))
        .await
        .unwrap()
        .unwrap();
    let (rest, info) = until_closed(&mut events).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(info.code.as_u16(), 1000);
    assert!(info.clean, "{info:?}");
    server.stop().await;
}

#[actix_web::test]
async fn run_drives_a_handler_until_close() {
    let server = EchoServer::start();
    let session = connect_quiet(server.url("/echo")).await;
    session.handle.send_text("0").await.unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    // Each echo n is answered with n + 1; after 5 the handler closes.
    let info = within(
        "run to finish",
        session.run(move |handle, event| {
            let log = log.clone();
            async move {
                if let Incoming::Text(text) = event {
                    let n: u32 = text.parse().unwrap();
                    log.borrow_mut().push(n);
                    if n < 5 {
                        handle.send_text((n + 1).to_string()).await.unwrap();
                    } else {
                        handle.close(1000, "counted").await.unwrap();
                    }
                }
            }
        }),
    )
    .await;
    assert_eq!(*seen.borrow(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(info.code.as_u16(), 1000);
    assert_eq!(info.reason, "counted");
    assert!(info.clean, "{info:?}");
    server.stop().await;
}

/// A user actor that blocks its own mailbox (`ctx.wait`) on a send to the session from
/// inside its `Incoming` handler.
struct Blocker {
    session: Option<Addr<ClientSession>>,
    rounds: usize,
    replies: Vec<Result<(), actix_ws_session::Error>>,
    done: Option<tokio::sync::oneshot::Sender<Vec<Result<(), actix_ws_session::Error>>>>,
}

impl Actor for Blocker {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Attach(Addr<ClientSession>);

impl Handler<Attach> for Blocker {
    type Result = ();

    fn handle(&mut self, msg: Attach, _: &mut Context<Self>) {
        self.session = Some(msg.0);
    }
}

impl Handler<Incoming> for Blocker {
    type Result = ();

    fn handle(&mut self, event: Incoming, ctx: &mut Context<Self>) {
        let Incoming::Text(_) = event else { return };
        let session = self
            .session
            .clone()
            .expect("attached before the first message");
        self.rounds += 1;
        if self.rounds > 20 {
            if let Some(done) = self.done.take() {
                let _ = done.send(std::mem::take(&mut self.replies));
            }
            return;
        }
        let next = Send::text(format!("round {}", self.rounds));
        ctx.wait(session.send(next).into_actor(self).map(|reply, act, _| {
            act.replies
                .push(reply.unwrap_or(Err(actix_ws_session::Error::Closed)))
        }));
    }
}

#[actix_web::test]
async fn handler_waiting_on_the_session_does_not_deadlock() {
    let server = EchoServer::start();
    let (done, finished) = tokio::sync::oneshot::channel();
    let blocker = Blocker {
        session: None,
        rounds: 0,
        replies: Vec::new(),
        done: Some(done),
    }
    .start();
    let connection = connect_quiet_to(server.url("/echo"), blocker.clone().recipient()).await;
    blocker
        .send(Attach(connection.session.clone()))
        .await
        .unwrap();
    connection
        .session
        .send(Send::text("start"))
        .await
        .unwrap()
        .unwrap();
    let replies = within("20 blocking rounds (deadlock?)", finished)
        .await
        .unwrap();
    assert_eq!(replies.len(), 20);
    assert!(replies.iter().all(Result::is_ok), "{replies:?}");
    within("close", connection.session.send(Close::normal()))
        .await
        .unwrap()
        .unwrap();
    server.stop().await;
}

#[actix_web::test]
async fn session_keeps_running_after_its_address_is_dropped() {
    let server = common::ScriptedServer::start(|peer| {
        std::thread::sleep(std::time::Duration::from_millis(300));
        peer.send(common::op::TEXT, b"still there?");
        peer.send_close(1000, "done");
        peer.read_until_close()
    });
    let (recipient, mut events) = recorder();
    let connection = connect_quiet_to(server.url(), recipient).await;
    drop(connection); // every address the user had
    assert_eq!(
        next_event(&mut events).await,
        Incoming::Text("still there?".into())
    );
    let (_, info) = until_closed(&mut events).await;
    assert_eq!(info.code.as_u16(), 1000);
    assert!(info.clean, "{info:?}");
    let echo = server.join().await;
    assert_eq!(echo.close().map(|(code, _)| code), Some(1000));
}

#[actix_web::test]
async fn a_session_started_on_another_arbiter_runs_there() {
    let server = EchoServer::start();
    let arbiter = Arbiter::new();
    let mut session = within(
        "connect",
        ClientSession::builder(server.url("/echo"))
            .config(quiet())
            .arbiter(arbiter.handle())
            .connect_stream(),
    )
    .await
    .unwrap();
    session.handle.send_text("across threads").await.unwrap();
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Text("across threads".into())
    );
    close_cleanly(&mut session).await;
    arbiter.stop();
    let stopped = actix_web::rt::task::spawn_blocking(move || arbiter.join()).await;
    assert!(matches!(stopped, Ok(Ok(()))));
    server.stop().await;
}
