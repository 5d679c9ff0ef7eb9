//! TLS for `wss://` (feature `rustls`): rustls 0.23 with the `ring` provider, chosen
//! explicitly.
//!
//! The TLS handshake runs inside this crate's connector, not in awc: awc is handed an
//! already-encrypted stream and speaks plain HTTP/1.1 over it. That keeps the rejection tap
//! (status, headers and body of a refused upgrade) working for `wss://`, lets TLS run inside
//! a proxy tunnel, and keeps ALPN under this crate's control (`http/1.1` only: a WebSocket
//! upgrade cannot run over `h2`).
//!
//! No process-level `CryptoProvider` is consulted or installed: every `ClientConfig` this
//! module builds names the `ring` provider itself, so it works whether another crate in the
//! process installed a different default (e.g. aws-lc-rs) or none at all.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::Error;

/// The only ALPN protocol offered: the upgrade is an HTTP/1.1 request.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// How `wss://` connections verify the server.
///
/// The default ([`TlsConfig::new`]) trusts the Mozilla roots shipped by `webpki-roots`.
/// Certificates are always verified: the server name is the URL's host (sent as SNI), and
/// an IP-address URL is checked against the certificate's IP subject alternative names.
/// ALPN offers `http/1.1` only.
///
/// ```
/// # fn demo(ca_pem: &[u8]) -> Result<(), actix_ws_session::Error> {
/// use actix_ws_session::{ClientSession, TlsConfig};
///
/// // The public roots plus a private CA.
/// let tls = TlsConfig::new().add_ca_pem(ca_pem)?;
/// let builder = ClientSession::builder("wss://internal.example:8443/feed").tls(tls);
/// # Ok(()) }
/// ```
///
/// A whole `rustls::ClientConfig` (client certificates, certificate pinning, another crypto
/// provider) can be passed with [`TlsConfig::custom`].
#[derive(Clone)]
pub struct TlsConfig {
    source: Source,
    /// The built `ClientConfig`, shared by clones and built on first use.
    built: Arc<OnceLock<Result<Arc<ClientConfig>, Error>>>,
}

#[derive(Clone)]
enum Source {
    Roots {
        webpki: bool,
        #[cfg(feature = "native-roots")]
        native: bool,
        extra: Vec<CertificateDer<'static>>,
    },
    Custom(Arc<ClientConfig>),
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Roots {
                webpki,
                #[cfg(feature = "native-roots")]
                native,
                extra,
            } => {
                let mut s = f.debug_struct("TlsConfig");
                s.field("webpki_roots", webpki);
                #[cfg(feature = "native-roots")]
                s.field("native_roots", native);
                s.field("extra_cas", &extra.len()).finish()
            }
            Source::Custom(_) => f.write_str("TlsConfig(custom rustls::ClientConfig)"),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TlsConfig {
    fn from_source(source: Source) -> Self {
        Self {
            source,
            built: Arc::new(OnceLock::new()),
        }
    }

    /// Trusts the Mozilla root certificates (`webpki-roots`). This is what `wss://` uses
    /// when no `TlsConfig` is given.
    pub fn new() -> Self {
        Self::from_source(Source::Roots {
            webpki: true,
            #[cfg(feature = "native-roots")]
            native: false,
            extra: Vec::new(),
        })
    }

    /// Trusts no root at all: only the CAs added with [`TlsConfig::add_ca_pem`] and
    /// friends.
    pub fn no_roots() -> Self {
        Self::from_source(Source::Roots {
            webpki: false,
            #[cfg(feature = "native-roots")]
            native: false,
            extra: Vec::new(),
        })
    }

    /// Trusts the operating system's certificate store (read with `rustls-native-certs`
    /// when the first connection is made) instead of the Mozilla roots. Feature
    /// `native-roots`.
    #[cfg(feature = "native-roots")]
    pub fn native_roots() -> Self {
        Self::from_source(Source::Roots {
            webpki: false,
            native: true,
            extra: Vec::new(),
        })
    }

    /// Uses `config` as it is (client certificates, a custom verifier for pinning, another
    /// crypto provider), except that its ALPN list is replaced by `http/1.1`.
    pub fn custom(config: Arc<ClientConfig>) -> Self {
        Self::from_source(Source::Custom(config))
    }

    /// Also trusts the CA certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks).
    ///
    /// # Errors
    /// [`Error::Tls`] when `pem` holds no certificate or a malformed one, or when this is a
    /// [`TlsConfig::custom`] configuration (add the CA to your own root store instead).
    pub fn add_ca_pem(self, pem: &[u8]) -> Result<Self, Error> {
        let mut certs = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem) {
            certs.push(cert.map_err(|e| Error::Tls(format!("invalid CA PEM: {e}")))?);
        }
        if certs.is_empty() {
            return Err(Error::Tls("no certificate in the CA PEM".into()));
        }
        certs
            .into_iter()
            .try_fold(self, |tls, cert| tls.add_ca_der(cert))
    }

    /// Also trusts the CA certificates in the PEM file at `path`.
    ///
    /// # Errors
    /// [`Error::Tls`] when the file cannot be read, or as [`TlsConfig::add_ca_pem`].
    pub fn add_ca_pem_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| Error::Tls(format!("cannot read {}: {e}", path.display())))?;
        self.add_ca_pem(&pem)
            .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))
    }

    /// Also trusts the CA certificate `der` (DER-encoded).
    ///
    /// # Errors
    /// [`Error::Tls`] for a [`TlsConfig::custom`] configuration. A malformed certificate is
    /// reported when connecting.
    pub fn add_ca_der(self, der: impl Into<CertificateDer<'static>>) -> Result<Self, Error> {
        match self.source {
            Source::Roots {
                webpki,
                #[cfg(feature = "native-roots")]
                native,
                mut extra,
            } => {
                extra.push(der.into());
                Ok(Self::from_source(Source::Roots {
                    webpki,
                    #[cfg(feature = "native-roots")]
                    native,
                    extra,
                }))
            }
            Source::Custom(_) => Err(Error::Tls(
                "cannot add a CA to a custom rustls::ClientConfig; add it to its root store".into(),
            )),
        }
    }

    /// The `ClientConfig` for connections (built once, then shared by clones).
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        self.built.get_or_init(|| self.build()).clone()
    }

    fn build(&self) -> Result<Arc<ClientConfig>, Error> {
        let mut config = match &self.source {
            Source::Custom(config) => ClientConfig::clone(config),
            Source::Roots {
                webpki,
                #[cfg(feature = "native-roots")]
                native,
                extra,
            } => {
                let mut roots = RootCertStore::empty();
                if *webpki {
                    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                }
                #[cfg(feature = "native-roots")]
                if *native {
                    let found = rustls_native_certs::load_native_certs();
                    if found.certs.is_empty() {
                        let why = found.errors.first().map(ToString::to_string);
                        return Err(Error::Tls(format!(
                            "no native root certificate found{}",
                            why.map(|w| format!(": {w}")).unwrap_or_default()
                        )));
                    }
                    roots.add_parsable_certificates(found.certs);
                }
                for cert in extra {
                    roots
                        .add(cert.clone())
                        .map_err(|e| Error::Tls(format!("invalid CA certificate: {e}")))?;
                }
                ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| Error::Tls(e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            }
        };
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(Arc::new(config))
    }
}

/// The crypto provider of every configuration this crate builds: `ring`, never the process
/// default.
fn provider() -> Arc<CryptoProvider> {
    static RING: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    RING.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The configuration used for `wss://` when the builder was given none.
pub(crate) fn default_config() -> Result<Arc<ClientConfig>, Error> {
    static DEFAULT: OnceLock<TlsConfig> = OnceLock::new();
    DEFAULT.get_or_init(TlsConfig::new).client_config()
}

/// The name certificates must match: a DNS name, or an IP address (brackets of an IPv6
/// literal removed) checked against IP SANs.
fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(bare.to_string())
        .map_err(|_| Error::InvalidUrl(format!("{host:?} is not a valid TLS server name")))
}

/// Runs the TLS handshake with `host` over `io`.
pub(crate) async fn handshake<IO>(
    config: Arc<ClientConfig>,
    host: &str,
    io: IO,
) -> Result<TlsStream<IO>, Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let name = server_name(host)?;
    TlsConnector::from(config)
        .connect(name, io)
        .await
        .map_err(|e| {
            let why = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .map_or_else(|| e.to_string(), ToString::to_string);
            Error::Tls(format!("handshake with {host} failed: {why}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_is_http1_only_even_for_custom_configs() {
        let config = TlsConfig::new().client_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let mut custom = (*config).clone();
        custom.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = TlsConfig::custom(Arc::new(custom)).client_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_ca_pem_is_a_tls_error() {
        assert!(matches!(
            TlsConfig::new().add_ca_pem(b"not a pem"),
            Err(Error::Tls(_))
        ));
        let custom = TlsConfig::custom(TlsConfig::new().client_config().unwrap());
        assert!(matches!(
            custom.add_ca_pem_file("/nonexistent/ca.pem"),
            Err(Error::Tls(_))
        ));
    }

    #[test]
    fn ip_hosts_become_ip_server_names() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("example.test"),
            Ok(ServerName::DnsName(_))
        ));
    }
}
