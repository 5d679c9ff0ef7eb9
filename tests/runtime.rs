//! Verifies that sessions work on threads built with `runtime::spinning_runtime`: a
//! `System` and an `Arbiter` whose threads spin before blocking still carry the handshake,
//! pipelined traffic in order, timers (the pinger) and the close handshake.

mod common;

use std::time::Duration;

use actix_ws_session::runtime::spinning_runtime;
use actix_ws_session::{ClientSession, Incoming, Session};
use common::{close_cleanly, connect_quiet, next_event, quiet, within, EchoServer};

const SPIN: Duration = Duration::from_micros(10);
const MESSAGES: usize = 2_000;

/// Sends [`MESSAGES`] numbered texts without waiting for their echoes, then checks that
/// every echo comes back, in order (the pinger's Pongs may come in between).
async fn pipelined_echoes_arrive_in_order(session: &mut Session) {
    let sender = session.handle.clone();
    let sending = actix_rt::spawn(async move {
        for i in 0..MESSAGES {
            sender.send_text(format!("message {i}")).await.unwrap();
        }
    });
    let mut next = 0;
    while next < MESSAGES {
        match next_event(&mut session.incoming).await {
            Incoming::Text(echo) => assert_eq!(echo, format!("message {next}")),
            Incoming::Pong(_) => continue,
            other => panic!("expected echo {next}, got {other:?}"),
        }
        next += 1;
    }
    within("the sender to finish", sending).await.unwrap();
}

#[test]
fn sessions_run_on_a_spinning_system() {
    let system = actix_rt::System::with_tokio_rt(|| spinning_runtime(SPIN).expect("runtime"));
    system.block_on(async {
        let server = EchoServer::start();
        let mut session = connect_quiet(server.url("/echo")).await;
        pipelined_echoes_arrive_in_order(&mut session).await;
        let (rest, _) = close_cleanly(&mut session).await;
        assert!(rest.is_empty(), "unexpected events: {rest:?}");
        server.stop().await;
    });
}

#[actix_web::test]
async fn sessions_run_on_a_spinning_arbiter_with_their_timers() {
    let server = EchoServer::start();
    let arbiter = actix_rt::Arbiter::with_tokio_rt(|| spinning_runtime(SPIN).expect("runtime"));
    // The pinger runs on the arbiter's timers: a pong must come back between messages.
    let config = quiet().ping_interval(Some(Duration::from_millis(50)));
    let mut session = within(
        "connect",
        ClientSession::builder(server.url("/echo"))
            .config(config)
            .arbiter(arbiter.handle())
            .connect_stream(),
    )
    .await
    .unwrap();
    pipelined_echoes_arrive_in_order(&mut session).await;
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let stats = within("stats", session.handle.stats()).await.unwrap();
    assert!(
        stats.last_rtt.is_some(),
        "no Ping answered in 300 ms: {stats:?}"
    );
    let (rest, _) = close_cleanly(&mut session).await;
    assert!(
        rest.iter().all(|event| matches!(event, Incoming::Pong(_))),
        "unexpected events: {rest:?}"
    );
    server.stop().await;
    arbiter.stop();
    assert!(arbiter.join().is_ok(), "the arbiter's thread panicked");
}
