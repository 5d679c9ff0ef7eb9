//! `wss://` against a local actix-web rustls server whose CA and certificates are made in
//! the test: success with the CA, refusal without it, refusal on a host-name mismatch (DNS
//! and IP SAN rules), the body of a refused upgrade read through TLS, a custom
//! `ClientConfig`, a TLS handshake that never finishes, and independence from the
//! process-level rustls `CryptoProvider`.

mod common;
#[path = "common/tls.rs"]
mod tls_support;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_ws_session::rustls::crypto::{ring, CryptoProvider};
use actix_ws_session::rustls::{ClientConfig, RootCertStore};
use actix_ws_session::{ClientSession, Config, Error, Incoming, TlsConfig};
use common::{next_event, until_closed, within};
use tls_support::{Pki, TlsEchoServer};

fn config() -> Config {
    Config::default().ping_interval(None)
}

fn trusting(pki: &Pki) -> TlsConfig {
    TlsConfig::new()
        .add_ca_pem(pki.ca_pem().as_bytes())
        .expect("the test CA parses")
}

/// Connects, echoes one message, closes cleanly; returns the handshake's `x-host` mirror.
async fn echo_once(url: &str, tls: TlsConfig) -> String {
    let mut session = within(
        "wss connect",
        ClientSession::builder(url)
            .tls(tls)
            .config(config())
            .connect_stream(),
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let host = session
        .handshake
        .response_header("x-host")
        .unwrap_or_default()
        .to_string();
    session.handle.send_text("over tls").await.unwrap();
    match next_event(&mut session.incoming).await {
        Incoming::Text(text) => assert_eq!(text, "over tls"),
        other => panic!("expected the echo, got {other:?}"),
    }
    session.handle.close(1000, "").await.unwrap();
    let (_, info) = until_closed(&mut session.incoming).await;
    assert!(info.clean, "{info:?}");
    host
}

async fn connect_error(url: &str, tls: Option<TlsConfig>) -> Error {
    let mut builder = ClientSession::builder(url).config(config());
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    match within("wss connect", builder.connect_stream()).await {
        Ok(_) => panic!("connecting to {url} should fail"),
        Err(error) => error,
    }
}

#[actix_web::test]
async fn connects_with_the_private_ca_and_sends_host_with_port() {
    let pki = Pki::new("tls test CA");
    let server = TlsEchoServer::start(pki.server_config(&["127.0.0.1", "localhost"]));
    let url = server.url("127.0.0.1", "/echo");
    let host = echo_once(&url, trusting(&pki)).await;
    assert_eq!(host, format!("127.0.0.1:{}", server.addr.port()));

    // A DNS name is verified (and sent as SNI) too.
    let host = echo_once(&server.url("localhost", "/echo"), trusting(&pki)).await;
    assert_eq!(host, format!("localhost:{}", server.addr.port()));

    // The CA as DER, trusted alone.
    let only_ca = TlsConfig::no_roots().add_ca_der(pki.ca_der()).unwrap();
    echo_once(&url, only_ca).await;
    server.stop().await;
}

#[actix_web::test]
async fn refuses_a_server_the_roots_do_not_vouch_for() {
    let pki = Pki::new("unknown CA");
    let server = TlsEchoServer::start(pki.server_config(&["127.0.0.1"]));
    let url = server.url("127.0.0.1", "/echo");
    for tls in [None, Some(TlsConfig::new())] {
        match connect_error(&url, tls).await {
            Error::Tls(why) => assert!(why.contains("UnknownIssuer"), "{why}"),
            other => panic!("expected a TLS error, got {other:?}"),
        }
    }
    // Another CA's certificate does not help.
    let stranger = Pki::new("another CA");
    match connect_error(&url, Some(trusting(&stranger))).await {
        Error::Tls(why) => assert!(why.contains("UnknownIssuer"), "{why}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    server.stop().await;
}

#[actix_web::test]
async fn refuses_a_certificate_for_another_host() {
    let pki = Pki::new("tls test CA");
    // A certificate for a DNS name only, reached by IP: IP URLs need an IP SAN.
    for names in [&["example.test"][..], &["localhost"][..]] {
        let server = TlsEchoServer::start(pki.server_config(names));
        let url = server.url("127.0.0.1", "/echo");
        match connect_error(&url, Some(trusting(&pki))).await {
            Error::Tls(why) => assert!(why.contains("not valid for name"), "{names:?}: {why}"),
            other => panic!("expected a TLS error for {names:?}, got {other:?}"),
        }
        server.stop().await;
    }
    // A certificate for 127.0.0.2 does not cover 127.0.0.1.
    let server = TlsEchoServer::start(pki.server_config(&["127.0.0.2"]));
    let url = server.url("127.0.0.1", "/echo");
    assert!(matches!(
        connect_error(&url, Some(trusting(&pki))).await,
        Error::Tls(_)
    ));
    server.stop().await;
}

#[actix_web::test]
async fn a_refused_upgrade_is_reported_with_its_body_through_tls() {
    let pki = Pki::new("tls test CA");
    let server = TlsEchoServer::start(pki.server_config(&["127.0.0.1"]));
    let url = server.url("127.0.0.1", "/forbidden");
    match connect_error(&url, Some(trusting(&pki))).await {
        Error::Rejected(rejection) => {
            assert_eq!(rejection.status, 403);
            assert!(
                rejection
                    .headers
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case("x-reason") && v == "members-only"),
                "{:?}",
                rejection.headers
            );
            assert_eq!(&rejection.body[..], b"go away");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    server.stop().await;
}

#[actix_web::test]
async fn a_custom_client_config_is_used_with_http1_alpn() {
    let pki = Pki::new("tls test CA");
    let server = TlsEchoServer::start(pki.server_config(&["127.0.0.1"]));
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der()).unwrap();
    let mut custom = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Offering h2 would break the upgrade; the session replaces ALPN with http/1.1.
    custom.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    echo_once(
        &server.url("127.0.0.1", "/echo"),
        TlsConfig::custom(Arc::new(custom)),
    )
    .await;
    server.stop().await;
}

#[actix_web::test]
async fn a_tls_handshake_that_never_finishes_hits_the_handshake_timeout() {
    // Accepted by the kernel, never answered: the ClientHello gets no reply.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("wss://127.0.0.1:{}/", silent.local_addr().unwrap().port());
    let limit = Duration::from_millis(300);
    let outcome = within(
        "the handshake timeout",
        ClientSession::builder(url)
            .config(config().handshake_timeout(limit))
            .connect_stream(),
    )
    .await;
    assert_eq!(outcome.err(), Some(Error::HandshakeTimeout(limit)));
    drop(silent);
}

/// tokio-tungstenite#336: a client that relies on the process-level provider panics when
/// none (or more than one) is installed. This crate names `ring` in every configuration it
/// builds, so it neither needs a default nor is changed by one.
#[actix_web::test]
async fn no_process_level_crypto_provider_is_needed_or_used() {
    let pki = Pki::new("tls test CA");
    let server = TlsEchoServer::start(pki.server_config(&["127.0.0.1"]));
    let url = server.url("127.0.0.1", "/echo");

    assert!(
        CryptoProvider::get_default().is_none(),
        "nothing in this test binary installs a default provider"
    );
    echo_once(&url, trusting(&pki)).await;
    echo_once(
        &url,
        TlsConfig::no_roots().add_ca_der(pki.ca_der()).unwrap(),
    )
    .await;
    assert!(CryptoProvider::get_default().is_none(), "we installed none");

    // Another crate installs a different default (here: one that can negotiate nothing).
    let useless = CryptoProvider {
        cipher_suites: Vec::new(),
        ..ring::default_provider()
    };
    useless
        .install_default()
        .expect("no default was installed yet");
    echo_once(&url, trusting(&pki)).await;
    assert!(
        CryptoProvider::get_default().is_some_and(|p| p.cipher_suites.is_empty()),
        "the other crate's default is left alone"
    );
    server.stop().await;
}
