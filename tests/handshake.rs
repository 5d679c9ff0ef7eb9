//! Verifies the opening handshake: what a successful upgrade exposes (status, headers,
//! subprotocol, redacted request headers) and how every kind of failed upgrade is reported.

mod common;

use std::time::{Duration, Instant};

use actix_ws_session::{ClientSession, Config, Error, GetHandshake};
use common::{close_cleanly, connect_error, until_closed, within, EchoServer, ScriptedServer};

#[actix_web::test]
async fn handshake_exposes_status_headers_and_redacts_secrets() {
    let server = EchoServer::start();
    let mut session = within(
        "connect",
        ClientSession::builder(server.url("/echo"))
            .header("Authorization", "Bearer s3cret-token")
            .header("x-trace", "abc123")
            .config(Config::default().ping_interval(None))
            .connect_stream(),
    )
    .await
    .expect("connect to the echo server");

    let handshake = &session.handshake;
    assert_eq!(handshake.status, 101);
    assert_eq!(
        handshake
            .response_header("upgrade")
            .map(str::to_ascii_lowercase),
        Some("websocket".to_string())
    );
    assert_eq!(handshake.protocol, None);
    assert!(handshake.url.ends_with("/echo"), "{}", handshake.url);
    let request_header = |name: &str| {
        handshake
            .request_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        request_header("authorization").as_deref(),
        Some("<redacted>")
    );
    assert_eq!(request_header("x-trace").as_deref(), Some("abc123"));
    assert!(
        !format!("{handshake:?}").contains("s3cret"),
        "the token leaked into the handshake record"
    );

    // The session answers GetHandshake with the same record.
    let asked = within("GetHandshake", session.handle.addr().send(GetHandshake))
        .await
        .expect("session alive");
    assert_eq!(*asked, *session.handshake);
    let via_handle = within("handle.handshake()", session.handle.handshake())
        .await
        .unwrap();
    assert_eq!(*via_handle, *session.handshake);

    close_cleanly(&mut session).await;
    server.stop().await;
}

#[actix_web::test]
async fn offered_subprotocol_is_negotiated() {
    let server = EchoServer::start();
    let (recipient, mut events) = common::recorder();
    let connection = within(
        "connect",
        ClientSession::builder(server.url("/chat"))
            .protocol("chat")
            .config(Config::default().ping_interval(None))
            .connect(recipient),
    )
    .await
    .expect("connect to /chat");
    assert_eq!(connection.handshake.status, 101);
    assert_eq!(connection.handshake.protocol.as_deref(), Some("chat"));
    assert_eq!(
        connection
            .handshake
            .response_header("sec-websocket-protocol"),
        Some("chat")
    );
    let asked = within("GetHandshake", connection.session.send(GetHandshake))
        .await
        .unwrap();
    assert_eq!(asked.protocol.as_deref(), Some("chat"));
    assert_eq!(*asked, *connection.handshake);

    within(
        "close",
        connection.session.send(actix_ws_session::Close::normal()),
    )
    .await
    .unwrap()
    .unwrap();
    let (_, info) = until_closed(&mut events).await;
    assert_eq!(info.code.as_u16(), 1000);
    server.stop().await;
}

#[actix_web::test]
async fn non_101_answer_is_rejected_with_status_headers_and_body() {
    let server = EchoServer::start();
    let error = connect_error(ClientSession::builder(server.url("/forbidden"))).await;
    match error {
        Error::Rejected(rejection) => {
            assert_eq!(rejection.status, 403);
            let reason = rejection
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("x-reason"))
                .map(|(_, v)| v.as_str());
            assert_eq!(reason, Some("members-only"), "{:?}", rejection.headers);
            assert_eq!(&rejection.body[..], b"go away");
        }
        other => panic!("expected Error::Rejected, got {other:?}"),
    }
    server.stop().await;
}

#[actix_web::test]
async fn wrong_accept_key_fails_the_handshake() {
    let server = ScriptedServer::start_with(
        |_| {
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec()
        },
        |peer| peer.wait_for_eof(Duration::from_secs(5)),
    );
    let error = connect_error(ClientSession::builder(server.url())).await;
    assert!(
        matches!(error, Error::Handshake(_)),
        "expected Error::Handshake, got {error:?}"
    );
    assert!(
        server.join().await,
        "the client kept the socket of a failed handshake open"
    );
}

#[actix_web::test]
async fn subprotocol_that_was_not_offered_is_refused() {
    let server = ScriptedServer::start_with(
        |request| request.switching(&["Sec-WebSocket-Protocol: other"]),
        |peer| {
            let offered = peer
                .request
                .header("sec-websocket-protocol")
                .map(str::to_string);
            peer.wait_for_eof(Duration::from_secs(5));
            offered
        },
    );
    let error = connect_error(ClientSession::builder(server.url()).protocol("chat")).await;
    match error {
        Error::UnexpectedProtocol(name) => assert_eq!(name, "other"),
        other => panic!("expected Error::UnexpectedProtocol, got {other:?}"),
    }
    assert_eq!(server.join().await.as_deref(), Some("chat"));
}

#[actix_web::test]
async fn closed_port_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // dropped: nothing listens there now
    let error = connect_error(ClientSession::builder(format!("ws://127.0.0.1:{port}/"))).await;
    assert!(
        matches!(error, Error::Connect(_)),
        "expected Error::Connect, got {error:?}"
    );
}

#[actix_web::test]
async fn silent_server_hits_the_handshake_timeout() {
    // Accepts TCP, reads the request, never answers.
    let server = ScriptedServer::start_with(
        |_| Vec::new(),
        |peer| peer.wait_for_eof(Duration::from_secs(8)),
    );
    let limit = Duration::from_millis(500);
    let started = Instant::now();
    let error = connect_error(
        ClientSession::builder(server.url()).config(Config::default().handshake_timeout(limit)),
    )
    .await;
    let took = started.elapsed();
    match error {
        Error::HandshakeTimeout(d) => assert_eq!(d, limit),
        other => panic!("expected Error::HandshakeTimeout, got {other:?}"),
    }
    assert!(took >= limit, "gave up after {took:?}, before the limit");
    assert!(took < Duration::from_secs(5), "gave up only after {took:?}");
    assert!(
        server.join().await,
        "the client did not drop the socket after the timeout"
    );
}

#[actix_web::test]
async fn bad_input_is_refused_before_connecting() {
    let error =
        connect_error(ClientSession::builder("ws://127.0.0.1:1/").header("bad header name", "x"))
            .await;
    assert!(matches!(error, Error::InvalidHeader(_)), "{error:?}");
    let error =
        connect_error(ClientSession::builder("ws://127.0.0.1:1/").header("x-ok", "line\nbreak"))
            .await;
    assert!(matches!(error, Error::InvalidHeader(_)), "{error:?}");
    let error = connect_error(
        ClientSession::builder("ws://127.0.0.1:1/")
            .config(Config::default().close_timeout(Duration::ZERO)),
    )
    .await;
    assert!(matches!(error, Error::InvalidConfig(_)), "{error:?}");
    let error = connect_error(ClientSession::builder("not a url at all")).await;
    assert!(matches!(error, Error::InvalidUrl(_)), "{error:?}");
}
