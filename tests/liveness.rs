//! Verifies liveness: the ponger answers the peer's pings (a whole burst, in order), the
//! pinger measures round trips against a live peer, and a silent peer is detected and the
//! connection failed with 1011.

mod common;

use std::time::{Duration, Instant};

use actix_ws_session::{Config, Error, Incoming, Initiator, Session};
use bytes::Bytes;
use common::{close_cleanly, connect_quiet, connect_with, frame, next_event, op, until_closed};
use common::{ClientFrame, Peer, ScriptedServer};

/// The scripted server's side of a ping burst: writes `count` pings with payloads
/// `[tag, 0]`, `[tag, 1]`, … in one write, reads frames (each must be a Pong) until the Pong
/// for the last ping, then finishes the close handshake. Returns the Pongs read.
fn answer_ping_burst(peer: &mut Peer, tag: u8, count: u8) -> Vec<ClientFrame> {
    let burst: Vec<u8> = (0..count)
        .flat_map(|i| frame(op::PING, &[tag, i]))
        .collect();
    peer.write(&burst);
    let mut pongs = Vec::new();
    loop {
        let f = peer.read_frame();
        assert_eq!(f.opcode, op::PONG, "{f:?}");
        let last = f.payload == [tag, count - 1];
        pongs.push(f);
        if last {
            break;
        }
    }
    peer.finish_close_handshake();
    pongs
}

/// The next `count` events of `session`, which must all be pings; returns their payloads.
async fn next_pings(session: &mut Session, count: usize) -> Vec<Bytes> {
    let mut pings = Vec::new();
    while pings.len() < count {
        match next_event(&mut session.incoming).await {
            Incoming::Ping(payload) => pings.push(payload),
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    pings
}

#[actix_web::test]
async fn every_ping_of_a_burst_is_answered_in_order() {
    let server = ScriptedServer::start(|peer| {
        let pongs = answer_ping_burst(peer, b'p', 10);
        for f in &pongs {
            assert!(f.mask.is_some(), "unmasked pong");
        }
        pongs.into_iter().map(|f| f.payload).collect::<Vec<_>>()
    });
    let mut session = connect_quiet(server.url()).await;
    let pings = next_pings(&mut session, 10).await;
    let expected: Vec<Vec<u8>> = (0..10u8).map(|i| vec![b'p', i]).collect();
    assert_eq!(
        pings,
        expected
            .iter()
            .map(|p| Bytes::from(p.clone()))
            .collect::<Vec<_>>()
    );
    close_cleanly(&mut session).await;
    assert_eq!(
        server.join().await,
        expected,
        "pongs missing or out of order"
    );
}

#[actix_web::test]
async fn pinger_pings_and_measures_the_round_trip() {
    let server = ScriptedServer::start(|peer| {
        let mut pings = Vec::new();
        let close = loop {
            let f = peer.read_frame();
            match f.opcode {
                op::PING => {
                    assert!(f.payload.len() <= 125);
                    peer.send(op::PONG, &f.payload);
                    pings.push(f.payload);
                }
                op::CLOSE => break f,
                other => panic!("unexpected opcode {other}"),
            }
        };
        let echo = close.payload[..2].to_vec();
        peer.send(op::CLOSE, &echo);
        peer.wait_for_eof(Duration::from_secs(5));
        pings
    });
    let config = Config::default()
        .ping_interval(Some(Duration::from_millis(200)))
        .ping_timeout(Duration::from_secs(5));
    let mut session = connect_with(server.url(), config).await;
    let started = Instant::now();
    let mut rtt = None;
    // Wait (bounded) until the pinger has measured a round trip, then for one more ping.
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = session.handle.stats().await.unwrap();
        if stats.last_rtt.is_some() && started.elapsed() > Duration::from_millis(700) {
            rtt = stats.last_rtt;
            break;
        }
    }
    let rtt = rtt.expect("no round trip measured within 10 s");
    assert!(rtt < Duration::from_secs(5), "{rtt:?}");
    let (events, _) = close_cleanly(&mut session).await;
    assert!(
        events.iter().all(|e| matches!(e, Incoming::Pong(_))),
        "{events:?}"
    );

    let pings = server.join().await;
    assert!(pings.len() >= 2, "only {} pings", pings.len());
    let distinct: std::collections::HashSet<_> = pings.iter().collect();
    assert_eq!(
        distinct.len(),
        pings.len(),
        "ping payloads repeat: {pings:?}"
    );
}

#[actix_web::test]
async fn silent_peer_is_failed_with_1011() {
    let server = ScriptedServer::start(|peer| {
        let started = Instant::now();
        let mut pings = 0;
        let close = loop {
            let f = peer.read_frame();
            match f.opcode {
                op::PING => pings += 1, // never answered
                op::CLOSE => break f,
                other => panic!("unexpected opcode {other}"),
            }
        };
        let after = started.elapsed();
        peer.send(op::CLOSE, &close.payload[..2]);
        peer.wait_for_eof(Duration::from_secs(5));
        (pings, close.close(), after)
    });
    let timeout = Duration::from_millis(500);
    let config = Config::default()
        .ping_interval(Some(Duration::from_millis(200)))
        .ping_timeout(timeout)
        .close_timeout(Duration::from_secs(2));
    let mut session = connect_with(server.url(), config).await;
    let started = Instant::now();
    let (_, info) = until_closed(&mut session.incoming).await;
    let took = started.elapsed();
    assert_eq!(info.code.as_u16(), 1011, "{info:?}");
    assert_eq!(info.error, Some(Error::PingTimeout(timeout)), "{info:?}");
    assert_eq!(info.initiator, Initiator::Local);
    assert!(
        took < Duration::from_secs(5),
        "detected only after {took:?}"
    );

    let (pings, close, after) = server.join().await;
    assert!(pings >= 1);
    assert_eq!(close.map(|(code, _)| code), Some(1011));
    assert!(
        after >= timeout && after < Duration::from_secs(5),
        "Close 1011 after {after:?}"
    );
}

#[actix_web::test]
async fn user_ping_gets_its_pong_and_oversized_control_frames_are_refused() {
    let server = common::EchoServer::start();
    let mut session = connect_quiet(server.url("/echo")).await;
    session.handle.ping("marco").await.unwrap();
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Pong(Bytes::from_static(b"marco"))
    );
    assert_eq!(
        session.handle.ping(vec![0u8; 126]).await,
        Err(Error::ControlFrameTooLong(126))
    );
    assert_eq!(
        session
            .handle
            .send(actix_ws_session::Send::Pong(Bytes::from(vec![0u8; 200])))
            .await,
        Err(Error::ControlFrameTooLong(200))
    );
    // 125 bytes is allowed.
    session.handle.ping(vec![7u8; 125]).await.unwrap();
    assert_eq!(
        next_event(&mut session.incoming).await,
        Incoming::Pong(Bytes::from(vec![7u8; 125]))
    );
    close_cleanly(&mut session).await;
    server.stop().await;
}

#[actix_web::test]
async fn a_long_ping_burst_still_gets_the_last_ping_answered() {
    let server = ScriptedServer::start(|peer| {
        let pongs = answer_ping_burst(peer, b'q', 100);
        pongs.into_iter().map(|f| f.payload[1]).collect::<Vec<_>>()
    });
    let mut session = connect_quiet(server.url()).await;
    next_pings(&mut session, 100).await;
    close_cleanly(&mut session).await;
    let answered = server.join().await;
    assert_eq!(answered.last(), Some(&99));
    assert!(
        answered.windows(2).all(|w| w[0] < w[1]),
        "pongs out of order: {answered:?}"
    );
}
