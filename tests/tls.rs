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
use actix_ws_session::{ClientSession, Error, TlsConfig};
use common::{close_cleanly, echo_text_and_close, quiet, within};
use tls_support::{Pki, TlsEchoServer};

fn trusting(pki: &Pki) -> TlsConfig {
    TlsConfig::new()
        .add_ca_pem(pki.ca_pem().as_bytes())
        .expect("the test CA parses")
}

/// Connects, echoes one message, closes cleanly; returns the handshake's `x-host` mirror.
async fn echo_once(url: &str, tls: TlsConfig) -> String {
    let session = within(
        "wss connect",
        ClientSession::builder(url)
            .tls(tls)
            .config(quiet())
            .connect_stream(),
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let host = session
        .handshake
        .response_header("x-host")
        .unwrap_or_default()
        .to_string();
    echo_text_and_close(session, "over tls").await;
    host
}

async fn connect_error(url: &str, tls: Option<TlsConfig>) -> Error {
    let mut builder = ClientSession::builder(url).config(quiet());
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    common::connect_error(builder).await
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
async fn origin_cookies_and_basic_auth_reach_the_server() {
    let pki = Pki::new("tls test CA");
    let server = TlsEchoServer::start(pki.server_config(&["127.0.0.1"]));
    let mut session = within(
        "wss connect",
        ClientSession::builder(server.url("127.0.0.1", "/echo"))
            .tls(trusting(&pki))
            .origin("https://app.example")
            .cookie("theme", "dark")
            .cookie("sid", "s3cret")
            .basic_auth("aladdin", Some("open sesame"))
            .config(quiet())
            .connect_stream(),
    )
    .await
    .expect("connect");
    let mirrored = |name: &str| session.handshake.response_header(name).map(str::to_string);
    assert_eq!(mirrored("x-origin").as_deref(), Some("https://app.example"));
    assert_eq!(
        mirrored("x-cookie").as_deref(),
        Some("theme=dark; sid=s3cret")
    );
    assert_eq!(
        mirrored("x-authorization").as_deref(),
        Some("Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
    let recorded = |name: &str| {
        session
            .handshake
            .request_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(recorded("cookie").as_deref(), Some("<redacted>"));
    assert_eq!(recorded("authorization").as_deref(), Some("<redacted>"));
    close_cleanly(&mut session).await;
    server.stop().await;
}

/// `ws://[::1]:PORT/`: the IPv6 literal reaches the socket (skipped where ::1 is absent).
#[actix_web::test]
async fn ipv6_literal_urls_connect() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let url = format!("ws://[::1]:{}/", listener.local_addr().unwrap().port());
    let answer = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 2048];
        let n = peer.read(&mut buf).unwrap_or(0);
        let _ = peer.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\nno");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    let outcome = within(
        "connect to [::1]",
        ClientSession::builder(url).config(quiet()).connect_stream(),
    )
    .await;
    match outcome {
        Err(Error::Rejected(rejection)) => assert_eq!(rejection.status, 403),
        other => panic!("expected the 403, got {:?}", other.err()),
    }
    let request = answer.join().unwrap();
    assert!(
        request.to_ascii_lowercase().contains("\r\nhost: [::1]:"),
        "{request}"
    );
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
            .config(quiet().handshake_timeout(limit))
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

// ---------------------------------------------------------------------------------------
// The `client` example: `--ca FILE` and `--proxy URL`
// ---------------------------------------------------------------------------------------

/// Runs the example with `args` and `stdin` (then end of input); kills it after 20 s.
/// Returns (exit success, stdout, stderr).
async fn run_client(args: Vec<String>, stdin: &'static [u8]) -> (bool, String, String) {
    let output = common::run_client(args, stdin, Duration::from_secs(20)).await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn client_example_trusts_its_ca_file_and_refuses_without_it() {
    common::build_client_example().await;
    let pki = Pki::new("example CA");
    let dir = std::env::temp_dir().join(format!("actix-ws-session-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, pki.ca_pem()).unwrap();
    let ca = ca_file.display().to_string();

    let server = TlsEchoServer::start(pki.server_config(&["127.0.0.1"]));
    let url = server.url("127.0.0.1", "/echo");
    let (ok, stdout, stderr) =
        run_client(vec!["--ca".into(), ca.clone(), url.clone()], b"hi\n").await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "hi\n", "{stderr}");
    assert!(
        stderr.ends_with("closed code=1000 clean=true\n"),
        "{stderr}"
    );

    // Untrusted: one clear error line, then the close line, exit 1.
    let (ok, _, stderr) = run_client(vec![url.clone()], b"hi\n").await;
    assert!(!ok);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("error: TLS: "), "{stderr}");
    assert!(lines[0].contains("UnknownIssuer"), "{stderr}");
    assert_eq!(lines[1], "closed code=1006 clean=false");
    server.stop().await;

    // Wrong host name.
    let wrong = TlsEchoServer::start(pki.server_config(&["example.test"]));
    let url = wrong.url("127.0.0.1", "/echo");
    let (ok, _, stderr) = run_client(vec!["--ca".into(), ca.clone(), url], b"").await;
    assert!(!ok);
    assert!(stderr.starts_with("error: TLS: "), "{stderr}");
    assert!(stderr.contains("not valid for name"), "{stderr}");
    wrong.stop().await;

    // A proxy that refuses: its status, in one line.
    let refusing = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://user:secret@{}", refusing.local_addr().unwrap());
    let answer = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let (mut peer, _) = refusing.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 1024];
        let _ = peer.read(&mut buf);
        let _ = peer.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
    });
    let args = vec!["--proxy".into(), proxy, "ws://127.0.0.1:9/echo".to_string()];
    let (ok, _, stderr) = run_client(args, b"").await;
    assert!(!ok);
    assert_eq!(
        stderr,
        "error: proxy refused the tunnel with status 407 Proxy Authentication Required\n\
         closed code=1006 clean=false\n"
    );
    answer.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
