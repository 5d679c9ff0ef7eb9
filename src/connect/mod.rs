//! The opening handshake through awc, and the hand-off of its socket.
//!
//! awc performs the HTTP upgrade and checks `Sec-WebSocket-Accept`; this module adds what
//! awc leaves out (the body of a refused upgrade, subprotocol and extension checks, the
//! record of the exchange) and takes the raw socket out of awc's `Framed` **together with
//! its read buffer**: frames the server sent in the same segment as its 101 answer are in
//! that buffer and belong to the session.
//!
//! awc only ever sees a `ws://` URL: this crate's connector ([`tap`]) opens the transport
//! itself (TCP, an HTTP proxy's `CONNECT` tunnel, TLS for `wss://`), so the refused-upgrade
//! tap reads plaintext for `wss://` too, TLS runs inside a proxy tunnel, and ALPN is
//! `http/1.1` only. The `Host` header is set from the URL the user gave (port omitted when it
//! is the scheme's default).

mod proxy;
mod tap;
#[cfg(feature = "rustls")]
mod tls;

pub use proxy::Proxy;
#[cfg(feature = "rustls")]
pub use tls::TlsConfig;

use std::time::Duration;

use awc::error::ConnectError;
use awc::error::{SendRequestError, WsClientError};
use awc::http::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE, HOST, PROXY_AUTHORIZATION,
};
use awc::http::Uri;
use awc::BoxedSocket;
use bytes::{Bytes, BytesMut};

use crate::error::{Error, Rejection};
use crate::proto::{DeflateConfig, DeflateParams};
use tap::{Failure, Route, Tap, TapConnector};

/// Longest body prefix kept from a refused upgrade.
const REJECTION_BODY_LIMIT: usize = 1024;

/// Shown instead of the value of a header that carries a secret.
const REDACTED: &str = "<redacted>";

/// What the client asks for: URL, extra headers, offered subprotocols, TLS and proxy.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) url: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) protocols: Vec<String>,
    pub(crate) timeout: Duration,
    /// permessage-deflate to offer, if any.
    pub(crate) compression: Option<DeflateConfig>,
    /// TLS for `wss://`; `None`: [`TlsConfig::new`] (the webpki roots).
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) proxy: ProxySetting,
}

/// Whether, and through which proxy, to connect.
#[derive(Debug, Clone, Default)]
pub(crate) enum ProxySetting {
    /// Straight to the target (the default: the environment is not read).
    #[default]
    Direct,
    /// Through this proxy, unless its bypass list names the target host.
    Fixed(Proxy),
    /// Through the proxy the environment names at connect time ([`Proxy::from_env`]).
    FromEnv,
}

/// The opening handshake as it happened, like Ktor's `call` on a session.
///
/// Header values that carry secrets (`Authorization`, `Proxy-Authorization`, `Cookie`) are
/// recorded as `<redacted>`, and so is a password in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Handshake {
    /// The URL requested.
    pub url: String,
    /// The headers this client added to the request (awc adds the WebSocket ones).
    pub request_headers: Vec<(String, String)>,
    /// The response status (101).
    pub status: u16,
    /// The response headers, in order.
    pub response_headers: Vec<(String, String)>,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The extensions the server accepted (empty: none).
    pub extensions: Vec<String>,
    /// The HTTP proxy the connection was tunnelled through (`host:port`, never its
    /// credentials), or `None` for a direct connection.
    pub proxy: Option<String>,
}

impl Handshake {
    /// The first response header named `name` (case-insensitive).
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A socket after a successful upgrade.
pub(crate) struct Upgraded {
    pub(crate) io: BoxedSocket,
    pub(crate) read_buf: BytesMut,
    pub(crate) handshake: Handshake,
    /// permessage-deflate as negotiated, if it was.
    pub(crate) deflate: Option<DeflateParams>,
}

/// Performs the opening handshake within `request.timeout`.
///
/// Everything (proxy tunnel, TLS, HTTP upgrade) runs inside the one timeout.
pub(crate) async fn open(request: &Request) -> Result<Upgraded, Error> {
    let target = Target::parse(&request.url)?;
    let proxy = match &request.proxy {
        ProxySetting::Direct => None,
        ProxySetting::Fixed(proxy) => Some(proxy.clone()),
        ProxySetting::FromEnv => Proxy::from_env(&request.url)?,
    }
    .filter(|proxy| !proxy.bypasses(&target.host));
    let route = Route {
        host: target.host.clone(),
        port: target.port,
        #[cfg(feature = "rustls")]
        tls: match (target.secure, &request.tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls.client_config()?),
            (true, None) => Some(tls::default_config()?),
        },
        proxy: proxy.clone(),
    };
    #[cfg(not(feature = "rustls"))]
    if target.secure {
        return Err(Error::InvalidUrl(
            "wss:// needs the crate feature `rustls`".into(),
        ));
    }
    let tap = Tap::recording();
    let failure = Failure::default();
    let connector = awc::Connector::new()
        .connector(TapConnector::new(tap.clone(), route, failure.clone()))
        .timeout(request.timeout);
    let client = awc::Client::builder()
        .connector(connector)
        .timeout(request.timeout)
        .finish();
    let mut ws = client.ws(target.awc_url.as_str());
    if !request.headers.iter().any(|(name, _)| *name == HOST) {
        ws = ws.header(HOST, target.host_header.clone());
    }
    for (name, value) in &request.headers {
        ws = ws.header(name.clone(), value.clone());
    }
    if !request.protocols.is_empty() {
        ws = ws.protocols(&request.protocols);
    }
    if let Some(compression) = &request.compression {
        ws = ws.header(
            awc::http::header::SEC_WEBSOCKET_EXTENSIONS,
            compression.offer(),
        );
    }
    match &proxy {
        Some(proxy) => log::debug!(
            "connecting to {} through proxy {}",
            redact_url(&request.url),
            proxy.authority()
        ),
        None => log::debug!("connecting to {}", redact_url(&request.url)),
    }
    let answer = actix_rt::time::timeout(request.timeout, ws.connect()).await;
    let recorded = tap.take();
    let (response, framed) = match answer {
        Err(_) => return Err(Error::HandshakeTimeout(request.timeout)),
        Ok(Err(error)) => {
            let failure = failure.borrow_mut().take();
            return Err(failure.unwrap_or_else(|| map_ws_error(error, &recorded, request.timeout)));
        }
        Ok(Ok(upgraded)) => upgraded,
    };
    let response_headers = header_list(response.headers());
    let protocol = check_protocol(response.headers(), &request.protocols)?;
    let (extensions, deflate) = check_extensions(response.headers(), request.compression)?;
    let parts = framed.into_parts();
    log::info!(
        "connected to {} (subprotocol {:?}, {} bytes already buffered)",
        redact_url(&request.url),
        protocol,
        parts.read_buf.len()
    );
    let handshake = Handshake {
        url: redact_url(&request.url),
        request_headers: request
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), shown_value(name, value)))
            .collect(),
        status: response.status().as_u16(),
        response_headers,
        protocol,
        extensions,
        proxy: proxy.map(|proxy| proxy.authority()),
    };
    Ok(Upgraded {
        io: parts.io,
        read_buf: parts.read_buf,
        handshake,
        deflate,
    })
}

fn map_ws_error(error: WsClientError, recorded: &[u8], timeout: Duration) -> Error {
    match error {
        WsClientError::InvalidResponseStatus(status) => {
            Error::Rejected(Box::new(parse_rejection(status.as_u16(), recorded)))
        }
        WsClientError::SendRequest(SendRequestError::Url(why)) => {
            Error::InvalidUrl(why.to_string())
        }
        WsClientError::SendRequest(SendRequestError::Http(why)) => {
            Error::InvalidUrl(why.to_string())
        }
        WsClientError::SendRequest(SendRequestError::Timeout)
        | WsClientError::SendRequest(SendRequestError::Connect(ConnectError::Timeout)) => {
            Error::HandshakeTimeout(timeout)
        }
        WsClientError::SendRequest(SendRequestError::Connect(why)) => {
            Error::Connect(why.to_string())
        }
        WsClientError::SendRequest(other) => Error::Handshake(other.to_string()),
        WsClientError::InvalidChallengeResponse(expected, got) => Error::Handshake(format!(
            "Sec-WebSocket-Accept is {:?}, expected {:?}",
            String::from_utf8_lossy(got.as_bytes()),
            String::from_utf8_lossy(&expected)
        )),
        other => Error::Handshake(other.to_string()),
    }
}

/// The URL the user gave, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// `wss://` (or `https://`).
    secure: bool,
    /// As written (an IPv6 literal keeps its brackets), without user-info.
    host: String,
    port: u16,
    /// `Host` header value: host, plus `:port` unless it is the scheme's default.
    host_header: HeaderValue,
    /// What awc is given: always `ws://host:port/path?query`, so awc adds no TLS.
    awc_url: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, Error> {
        let uri = Uri::try_from(url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        let secure = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("ws" | "http") => false,
            Some("wss" | "https") => true,
            Some(other) => {
                return Err(Error::InvalidUrl(format!(
                    "unsupported scheme {other:?} (use ws:// or wss://)"
                )))
            }
            None => return Err(Error::InvalidUrl("missing scheme (ws:// or wss://)".into())),
        };
        let host = match uri.host() {
            Some(host) if !host.is_empty() => host.to_string(),
            _ => return Err(Error::InvalidUrl("missing host".into())),
        };
        let default_port = if secure { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        let host_header = if port == default_port {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let host_header =
            HeaderValue::try_from(host_header).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let path = if path.is_empty() { "/" } else { path };
        Ok(Self {
            secure,
            awc_url: format!("ws://{host}:{port}{path}"),
            host,
            port,
            host_header,
        })
    }
}

/// Reads status, headers and the start of the body out of the recorded response bytes.
fn parse_rejection(status: u16, recorded: &[u8]) -> Rejection {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(recorded) {
        Ok(httparse::Status::Complete(head_len)) => {
            let headers = response
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let body = &recorded[head_len..];
            Rejection {
                status,
                headers,
                body: Bytes::copy_from_slice(&body[..body.len().min(REJECTION_BODY_LIMIT)]),
            }
        }
        _ => Rejection {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        },
    }
}

fn check_protocol(headers: &HeaderMap, offered: &[String]) -> Result<Option<String>, Error> {
    let Some(value) = headers.get(awc::http::header::SEC_WEBSOCKET_PROTOCOL) else {
        return Ok(None);
    };
    let chosen = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
    if offered.contains(&chosen) {
        Ok(Some(chosen))
    } else {
        Err(Error::UnexpectedProtocol(chosen))
    }
}

/// Checks the extensions the server accepted against the offer (permessage-deflate is
/// the only one ever offered).
fn check_extensions(
    headers: &HeaderMap,
    offered: Option<DeflateConfig>,
) -> Result<(Vec<String>, Option<DeflateParams>), Error> {
    let accepted: Vec<String> = headers
        .get_all(awc::http::header::SEC_WEBSOCKET_EXTENSIONS)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_string())
        .filter(|value| !value.is_empty())
        .collect();
    if accepted.is_empty() {
        return Ok((accepted, None));
    }
    let Some(offer) = offered else {
        return Err(Error::UnexpectedExtension(accepted.join(", ")));
    };
    let params = offer
        .accept(&accepted.join(", "))
        .map_err(|error| Error::UnexpectedExtension(error.to_string()))?;
    log::debug!("permessage-deflate negotiated: {params:?}");
    Ok((accepted, Some(params)))
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.to_string(), shown_value(name, value)))
        .collect()
}

fn shown_value(name: &HeaderName, value: &HeaderValue) -> String {
    if *name == AUTHORIZATION || *name == PROXY_AUTHORIZATION || *name == COOKIE {
        REDACTED.to_string()
    } else {
        String::from_utf8_lossy(value.as_bytes()).into_owned()
    }
}

/// The URL with any password in its user-info replaced.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let user = authority[..at].split(':').next().unwrap_or_default();
            format!(
                "{}{}:{}@{}",
                &url[..scheme_end + 3],
                user,
                REDACTED,
                &rest[at + 1..]
            )
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_keep_host_port_and_path_and_hand_awc_plain_ws() {
        let t = Target::parse("wss://user:pw@Example.com/feed?x=1").unwrap();
        assert!(t.secure);
        assert_eq!((t.host.as_str(), t.port), ("Example.com", 443));
        assert_eq!(t.host_header, "Example.com");
        assert_eq!(t.awc_url, "ws://Example.com:443/feed?x=1");
        let t = Target::parse("ws://127.0.0.1:9000").unwrap();
        assert!(!t.secure);
        assert_eq!(t.host_header, "127.0.0.1:9000");
        assert_eq!(t.awc_url, "ws://127.0.0.1:9000/");
        let t = Target::parse("wss://[::1]:8443/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("[::1]", 8443));
        assert_eq!(t.host_header, "[::1]:8443");
        assert_eq!(Target::parse("ws://h:80/").unwrap().host_header, "h");
        assert!(matches!(
            Target::parse("ftp://h/"),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(Target::parse("h:80"), Err(Error::InvalidUrl(_))));
        assert!(matches!(
            Target::parse("not a url"),
            Err(Error::InvalidUrl(_))
        ));
    }

    #[test]
    fn rejection_keeps_status_headers_and_body_start() {
        let raw = b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nno access";
        let rejection = parse_rejection(403, raw);
        assert_eq!(rejection.status, 403);
        assert_eq!(
            rejection.headers[0],
            ("content-type".to_string(), "text/plain".to_string())
        );
        assert_eq!(&rejection.body[..], b"no access");
    }

    #[test]
    fn rejection_body_is_capped_at_one_kib() {
        let mut raw = b"HTTP/1.1 500 Oops\r\n\r\n".to_vec();
        raw.extend_from_slice(&[b'x'; 5000]);
        assert_eq!(parse_rejection(500, &raw).body.len(), 1024);
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("wss://user:secret@example.com:8443/feed?x=1"),
            "wss://user:<redacted>@example.com:8443/feed?x=1"
        );
        assert_eq!(redact_url("ws://127.0.0.1:9000/"), "ws://127.0.0.1:9000/");
    }

    #[test]
    fn secret_headers_are_redacted() {
        let value = HeaderValue::from_static("Bearer abc");
        assert_eq!(shown_value(&AUTHORIZATION, &value), REDACTED);
        let name = HeaderName::from_static("x-trace");
        assert_eq!(shown_value(&name, &value), "Bearer abc");
    }

    #[test]
    fn a_protocol_that_was_not_offered_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            awc::http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
        assert_eq!(
            check_protocol(&headers, &["chat".into()]),
            Ok(Some("chat".into()))
        );
        assert_eq!(
            check_protocol(&headers, &["other".into()]),
            Err(Error::UnexpectedProtocol("chat".into()))
        );
        assert_eq!(check_protocol(&HeaderMap::new(), &[]), Ok(None));
    }
}
