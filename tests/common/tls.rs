//! TLS test support: a private PKI generated with rcgen, and an actix-web rustls echo server
//! on 127.0.0.1.
//!
//! Included by `tests/tls.rs` and `tests/proxy.rs` with
//! `#[path = "common/tls.rs"] mod tls_support;`, next to `mod common;`, whose echo loop,
//! `/forbidden` route and server spawning the server here reuses. The server's rustls
//! configuration names the `ring` provider explicitly, like the client's, so no test depends
//! on (or is disturbed by) the process-level default `CryptoProvider`.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::header::HeaderName;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws_session::rustls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::common;

/// A private certificate authority made for one test.
pub struct Pki {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    /// A fresh CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA:
    /// the chain (leaf, CA) and the leaf's key.
    pub fn server_cert(
        &self,
        names: &[&str],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "test server");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone(), self.ca_der()], key)
    }

    /// A rustls server configuration presenting a certificate for `names`.
    pub fn server_config(&self, names: &[&str]) -> rustls::ServerConfig {
        let (chain, key) = self.server_cert(names);
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
    }
}

/// An in-process actix-web server speaking TLS on 127.0.0.1:0:
///
/// * `/echo`: a WebSocket echo (text, binary, close); its 101 answer carries `x-host` with
///   the `Host` header the client sent, and `x-origin` / `x-cookie` / `x-authorization`
///   likewise;
/// * `/forbidden`: `403` with header `x-reason: members-only` and body `go away`.
pub struct TlsEchoServer {
    pub addr: SocketAddr,
    handle: ServerHandle,
}

async fn echo_ws(req: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
    let (mut response, session, stream) = actix_ws::handle(&req, body)?;
    for (from, to) in [
        ("host", "x-host"),
        ("origin", "x-origin"),
        ("cookie", "x-cookie"),
        ("authorization", "x-authorization"),
    ] {
        if let Some(value) = req.headers().get(from) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(to), value.clone());
        }
    }
    common::spawn_echo(session, stream.aggregate_continuations());
    Ok(response)
}

impl TlsEchoServer {
    /// Starts the server on the current actix system with `config`.
    pub fn start(config: rustls::ServerConfig) -> Self {
        let server = HttpServer::new(|| {
            App::new()
                .route("/echo", web::get().to(echo_ws))
                .route("/forbidden", web::get().to(common::forbidden))
        })
        .workers(1)
        .shutdown_timeout(1)
        .disable_signals()
        .bind_rustls_0_23(("127.0.0.1", 0), config)
        .expect("bind 127.0.0.1:0");
        let addr = server.addrs()[0];
        let handle = common::spawn_server(server.run());
        Self { addr, handle }
    }

    /// `wss://{host}:PORT{path}` (the server listens on 127.0.0.1 whatever `host` says;
    /// pass `127.0.0.1` unless the test resolves `host` to it some other way).
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("wss://{host}:{}{path}", self.addr.port())
    }

    /// Stops the server (gracefully, bounded by its 1 s shutdown timeout and a 10 s wait).
    pub async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(10), self.handle.stop(true))
            .await
            .expect("the TLS echo server stops within 10 s");
    }
}
