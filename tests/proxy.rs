//! HTTP `CONNECT` proxies, against a proxy written in the test (on 127.0.0.1, tunnelling
//! only to 127.0.0.1): `ws://` and `wss://` through it, with and without Basic credentials,
//! a 407 or other refusal as a typed error, the bypass list, the opt-in environment, a proxy
//! that never answers, and credentials kept out of logs and records.

mod common;
#[path = "common/proxy.rs"]
mod proxy_support;
#[path = "common/tls.rs"]
mod tls_support;

use std::time::{Duration, Instant};

use actix_ws_session::{ClientSession, Error, Proxy, Session, TlsConfig};
use common::{echo_text_and_close, quiet, within, EchoServer};
use proxy_support::{captured_logs, ConnectProxy, Mode};
use tls_support::{Pki, TlsEchoServer};

/// Echoes one message and closes cleanly.
async fn echo_and_close(session: Session) {
    echo_text_and_close(session, "through the tunnel").await;
}

/// Connects to `url` through `proxy` (within the test bound), with the quiet configuration
/// and, for `wss://`, `tls`.
async fn connect_via(url: String, proxy: Proxy, tls: Option<TlsConfig>) -> Result<Session, Error> {
    let mut builder = ClientSession::builder(url).proxy(proxy).config(quiet());
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    within("connect through the proxy", builder.connect_stream()).await
}

fn no_secret_logged(secret: &str) {
    let logs = captured_logs().lock().unwrap();
    assert!(
        logs.iter().any(|line| line.contains("through proxy")),
        "the connection was logged"
    );
    assert!(
        !logs.iter().any(|line| line.contains(secret)),
        "a log line holds the secret: {logs:#?}"
    );
}

#[actix_web::test]
async fn ws_through_a_proxy_without_credentials() {
    captured_logs();
    let server = EchoServer::start();
    let proxy = ConnectProxy::start(Mode::Tunnel { credentials: None }).await;
    let session = connect_via(
        server.url("/echo"),
        Proxy::new(&proxy.url(None)).unwrap(),
        None,
    )
    .await
    .expect("ws:// through the proxy");
    assert_eq!(
        session.handshake.proxy.as_deref(),
        Some(proxy.addr.to_string().as_str())
    );
    echo_and_close(session).await;
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, server.url("").trim_start_matches("ws://"));
    assert_eq!(seen[0].authorization, None);
    proxy.stop();
    server.stop().await;
}

#[actix_web::test]
async fn wss_through_a_proxy_with_credentials_verifies_the_target() {
    captured_logs();
    let pki = Pki::new("proxy test CA");
    let server = TlsEchoServer::start(pki.server_config(&["127.0.0.1"]));
    let proxy = ConnectProxy::start(Mode::Tunnel {
        credentials: Some("alice:hunter2".into()),
    })
    .await;
    let tls = TlsConfig::new()
        .add_ca_pem(pki.ca_pem().as_bytes())
        .unwrap();
    let session = connect_via(
        server.url("127.0.0.1", "/echo"),
        Proxy::new(&proxy.url(Some("alice:hunter2"))).unwrap(),
        Some(tls.clone()),
    )
    .await
    .expect("wss:// through the proxy");
    assert_eq!(
        session.handshake.response_header("x-host"),
        Some(format!("127.0.0.1:{}", server.addr.port()).as_str())
    );
    assert!(!format!("{:?}", session.handshake).contains("hunter2"));
    echo_and_close(session).await;
    assert!(proxy.seen()[0].authorization.is_some());

    // Credentials given with basic_auth instead of the URL.
    let session = connect_via(
        server.url("127.0.0.1", "/echo"),
        Proxy::new(&proxy.url(None))
            .unwrap()
            .basic_auth("alice", "hunter2"),
        Some(tls.clone()),
    )
    .await
    .expect("wss:// through the proxy with basic_auth");
    echo_and_close(session).await;
    server.stop().await;

    // TLS inside the tunnel is checked against the target's name, not the proxy's.
    let wrong = TlsEchoServer::start(pki.server_config(&["example.test"]));
    let outcome = connect_via(
        wrong.url("127.0.0.1", "/echo"),
        Proxy::new(&proxy.url(Some("alice:hunter2"))).unwrap(),
        Some(tls),
    )
    .await;
    match outcome {
        Err(Error::Tls(why)) => assert!(why.contains("not valid for name"), "{why}"),
        other => panic!("expected a TLS error, got {:?}", other.err()),
    }
    no_secret_logged("hunter2");
    no_secret_logged("YWxpY2U6aHVudGVyMg"); // base64("alice:hunter2")
    proxy.stop();
    wrong.stop().await;
}

#[actix_web::test]
async fn wrong_or_missing_credentials_are_a_typed_407() {
    captured_logs();
    let server = EchoServer::start();
    let proxy = ConnectProxy::start(Mode::Tunnel {
        credentials: Some("alice:hunter2".into()),
    })
    .await;
    for userinfo in [Some("alice:wrong-pass"), None] {
        let outcome = connect_via(
            server.url("/echo"),
            Proxy::new(&proxy.url(userinfo)).unwrap(),
            None,
        )
        .await;
        match outcome {
            Err(Error::Proxy { status, reason }) => {
                assert_eq!(status, 407);
                assert_eq!(reason, "Proxy Authentication Required");
            }
            other => panic!("expected a 407 for {userinfo:?}, got {:?}", other.err()),
        }
    }
    // The right ones, percent-encoded in the URL, get through.
    let session = connect_via(
        server.url("/echo"),
        Proxy::new(&proxy.url(Some("alice:hunter%32"))).unwrap(),
        None,
    )
    .await
    .expect("percent-encoded credentials");
    echo_and_close(session).await;
    no_secret_logged("wrong-pass");
    proxy.stop();
    server.stop().await;
}

#[actix_web::test]
async fn the_bypass_list_connects_directly() {
    let server = EchoServer::start();
    let proxy = ConnectProxy::start(Mode::Refuse(403)).await;
    let refused = connect_via(
        server.url("/echo"),
        Proxy::new(&proxy.url(None)).unwrap(),
        None,
    )
    .await;
    assert!(
        matches!(refused, Err(Error::Proxy { status: 403, .. })),
        "{:?}",
        refused.err()
    );
    assert_eq!(proxy.seen().len(), 1);

    for entry in ["127.0.0.1", "127.0.0.0/8", "*"] {
        let session = connect_via(
            server.url("/echo"),
            Proxy::new(&proxy.url(None)).unwrap().no_proxy([entry]),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("bypass {entry:?}: {e}"));
        assert_eq!(session.handshake.proxy, None);
        echo_and_close(session).await;
    }
    assert_eq!(
        proxy.seen().len(),
        1,
        "the bypassed connections skipped the proxy"
    );
    proxy.stop();
    server.stop().await;
}

#[actix_web::test]
async fn a_proxy_that_never_answers_hits_the_handshake_timeout() {
    let proxy = ConnectProxy::start(Mode::Silent).await;
    let limit = Duration::from_millis(300);
    for url in ["ws://127.0.0.1:9/echo", "wss://127.0.0.1:9/echo"] {
        let started = Instant::now();
        let outcome = within(
            "the handshake timeout",
            ClientSession::builder(url)
                .proxy(Proxy::new(&proxy.url(None)).unwrap())
                .config(quiet().handshake_timeout(limit))
                .connect_stream(),
        )
        .await;
        assert_eq!(outcome.err(), Some(Error::HandshakeTimeout(limit)), "{url}");
        assert!(started.elapsed() < Duration::from_secs(3), "{url}");
    }
    assert_eq!(proxy.seen().len(), 2);
    proxy.stop();
}

/// The only test here that touches the process environment (the others pass their proxy
/// explicitly and never read it).
#[actix_web::test]
async fn the_environment_is_read_only_on_request() {
    let server = EchoServer::start();
    let proxy = ConnectProxy::start(Mode::Tunnel { credentials: None }).await;
    let names = [
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ];
    let saved: Vec<_> = names.iter().map(|n| (n, std::env::var_os(n))).collect();
    for name in names {
        std::env::remove_var(name);
    }
    std::env::set_var("http_proxy", proxy.url(None));

    let connect = |from_env: bool| {
        let mut builder = ClientSession::builder(server.url("/echo")).config(quiet());
        if from_env {
            builder = builder.proxy_from_env();
        }
        within("connect", builder.connect_stream())
    };
    echo_and_close(connect(false).await.expect("direct")).await;
    assert!(proxy.seen().is_empty(), "the environment was read unasked");
    echo_and_close(connect(true).await.expect("through the env proxy")).await;
    assert_eq!(proxy.seen().len(), 1);
    std::env::set_var("NO_PROXY", "localhost,127.0.0.1");
    echo_and_close(connect(true).await.expect("bypassed by NO_PROXY")).await;
    assert_eq!(proxy.seen().len(), 1);

    for (name, value) in saved {
        match value {
            Some(value) => std::env::set_var(name, value),
            None => std::env::remove_var(name),
        }
    }
    proxy.stop();
    server.stop().await;
}
