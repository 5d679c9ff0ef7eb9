//! HTTP proxies: the `CONNECT` tunnel, Basic credentials, the bypass list, and the
//! opt-in reading of `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY`.
//!
//! awc has no proxy support, so the tunnel is opened inside this crate's connector: TCP to
//! the proxy, `CONNECT host:port`, the proxy's answer read with `httparse`; then (for
//! `wss://`) TLS with the *target* host inside the tunnel, then awc's HTTP upgrade.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::Error;

/// Longest proxy answer head read before giving up.
const ANSWER_LIMIT: usize = 8 * 1024;

/// An HTTP proxy reached with `CONNECT`, for `ws://` and `wss://` alike.
///
/// ```
/// # fn demo() -> Result<(), actix_ws_session::Error> {
/// use actix_ws_session::{ClientSession, Proxy};
///
/// let proxy = Proxy::new("http://user:secret@proxy.internal:3128")?
///     .no_proxy(["localhost", "127.0.0.1", ".corp.example"]);
/// let builder = ClientSession::builder("wss://feed.example.com/ws").proxy(proxy);
/// # Ok(()) }
/// ```
///
/// Credentials (from the URL's user-info or [`Proxy::basic_auth`]) are sent as
/// `Proxy-Authorization: Basic …` and nowhere else; `Debug` shows them as `<redacted>`
/// and they are never logged. A proxy that answers `CONNECT` with anything but 2xx (for
/// example 407, Proxy Authentication Required) fails the connection with
/// [`Error::Proxy`].
#[derive(Clone)]
pub struct Proxy {
    host: String,
    port: u16,
    user: Option<String>,
    /// `base64(user:password)`.
    credentials: Option<String>,
    bypass: Vec<Bypass>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| super::REDACTED),
            )
            .field("no_proxy", &self.bypass)
            .finish()
    }
}

/// One entry of a bypass list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    /// `*`: every host.
    All,
    /// `example.com` or `.example.com`: the domain and every name under it.
    Domain(String),
    /// An IP address, or a network in CIDR form (`10.0.0.0/8`).
    Net(IpAddr, u8),
}

impl Proxy {
    /// A proxy from its URL: `http://[user:password@]host[:port][/]` (user and password
    /// percent-decoded; port 80 when omitted). A URL without a scheme is taken as `http://`.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for another scheme (`https://` and `socks5://` proxies are not
    /// supported), a missing host or an invalid port.
    pub fn new(url: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::InvalidUrl(format!("proxy {}: {why}", redact(url)));
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(invalid(&format!(
                    "unsupported scheme {scheme:?} (only http:// proxies are supported)"
                )))
            }
            None => url,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| invalid("invalid port"))?;
        if host.is_empty() || host == "[]" {
            return Err(invalid("missing host"));
        }
        let mut proxy = Self {
            host: host.to_string(),
            port: port.unwrap_or(80),
            user: None,
            credentials: None,
            bypass: Vec::new(),
        };
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            proxy = proxy.basic_auth(&percent_decode(user), &percent_decode(password));
        }
        Ok(proxy)
    }

    /// Sends `Proxy-Authorization: Basic base64(user:password)` with the `CONNECT`.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.user = Some(user.to_string());
        self.credentials = Some(token);
        self
    }

    /// Adds entries to the bypass list: connections to a matching host skip the proxy.
    ///
    /// An entry is `*` (every host), a domain (`example.com` or `.example.com`: the domain
    /// and every name under it), an IP address (`127.0.0.1`, `::1` or `[::1]`), or a network
    /// (`10.0.0.0/8`). Entries are matched against the URL's host as written: names are not
    /// resolved, so `localhost` and `127.0.0.1` are separate entries. A `:port` suffix on a
    /// name is ignored. Empty entries are skipped; entries may also be comma-separated, as
    /// in `NO_PROXY`.
    pub fn no_proxy<I, S>(mut self, entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for entry in entries {
            self.bypass
                .extend(entry.as_ref().split(',').filter_map(parse_bypass));
        }
        self
    }

    /// Whether a connection to `host` (as written in the URL) skips this proxy.
    pub fn bypasses(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.bypass.iter().any(|entry| match entry {
            Bypass::All => true,
            Bypass::Domain(domain) => {
                host == *domain
                    || (host.len() > domain.len()
                        && host.ends_with(domain.as_str())
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
            }
            Bypass::Net(net, bits) => ip.is_some_and(|ip| in_network(ip, *net, *bits)),
        })
    }

    /// The proxy the environment names for `url`, if any: for `wss://` (and `https://`)
    /// `https_proxy`, `HTTPS_PROXY`, then `all_proxy`, `ALL_PROXY`; for `ws://` (and
    /// `http://`) `http_proxy`, `HTTP_PROXY`, then `all_proxy`, `ALL_PROXY` (the lowercase
    /// form of each is read first). `no_proxy` / `NO_PROXY` becomes its bypass list.
    ///
    /// The environment is read only when you call this (or
    /// [`ClientBuilder::proxy_from_env`](crate::ClientBuilder::proxy_from_env)): a client
    /// never picks up a proxy from the environment on its own.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the variable holds an unusable proxy URL.
    pub fn from_env(url: &str) -> Result<Option<Self>, Error> {
        let secure = {
            let scheme = url.split("://").next().unwrap_or_default();
            scheme.eq_ignore_ascii_case("wss") || scheme.eq_ignore_ascii_case("https")
        };
        from_lookup(secure, |name| std::env::var(name).ok())
    }

    /// `host:port` of the proxy (no credentials), as shown in logs and the handshake record.
    pub(crate) fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The proxy's address for the TCP connector.
    pub(crate) fn uri(&self) -> Result<awc::http::Uri, Error> {
        awc::http::Uri::try_from(format!("http://{}/", self.authority()))
            .map_err(|e| Error::InvalidUrl(format!("proxy {}: {e}", self.authority())))
    }

    /// Asks the proxy, over `io`, for a tunnel to `host:port`, and reads its answer.
    pub(crate) async fn tunnel<IO>(&self, io: &mut IO, host: &str, port: u16) -> Result<(), Error>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let target = format!("{host}:{port}");
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(credentials) = &self.credentials {
            request.push_str("Proxy-Authorization: Basic ");
            request.push_str(credentials);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let lost = |e: std::io::Error| Error::Connect(format!("proxy {}: {e}", self.authority()));
        io.write_all(request.as_bytes()).await.map_err(lost)?;
        io.flush().await.map_err(lost)?;
        log::debug!("CONNECT {target} sent to proxy {}", self.authority());

        let mut answer = Vec::with_capacity(256);
        let mut chunk = [0u8; 512];
        loop {
            let n = io.read(&mut chunk).await.map_err(lost)?;
            if n == 0 {
                return Err(Error::Connect(format!(
                    "proxy {} closed the connection before answering CONNECT",
                    self.authority()
                )));
            }
            answer.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&answer) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = response.code.unwrap_or_default();
                    if !(200..300).contains(&status) {
                        return Err(Error::Proxy {
                            status,
                            reason: response.reason.unwrap_or_default().to_string(),
                        });
                    }
                    if head_len != answer.len() {
                        return Err(Error::Connect(format!(
                            "proxy {} sent data after its {status} answer to CONNECT",
                            self.authority()
                        )));
                    }
                    log::debug!("proxy {} opened a tunnel to {target}", self.authority());
                    return Ok(());
                }
                Ok(httparse::Status::Partial) if answer.len() < ANSWER_LIMIT => {}
                Ok(httparse::Status::Partial) => {
                    return Err(Error::Connect(format!(
                        "proxy {}: answer to CONNECT over {ANSWER_LIMIT} bytes",
                        self.authority()
                    )))
                }
                Err(e) => {
                    return Err(Error::Connect(format!(
                        "proxy {}: invalid answer to CONNECT ({e})",
                        self.authority()
                    )))
                }
            }
        }
    }
}

/// [`Proxy::from_env`] over any variable lookup.
fn from_lookup(secure: bool, get: impl Fn(&str) -> Option<String>) -> Result<Option<Proxy>, Error> {
    let names: &[&str] = if secure {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    };
    let set = |name: &&str| get(name).filter(|value| !value.trim().is_empty());
    let Some(url) = names.iter().find_map(set) else {
        return Ok(None);
    };
    let proxy = Proxy::new(url.trim())?;
    let bypass = ["no_proxy", "NO_PROXY"].iter().find_map(set);
    Ok(Some(proxy.no_proxy(bypass)))
}

fn parse_bypass(entry: &str) -> Option<Bypass> {
    let entry = entry.trim();
    if entry.is_empty() {
        return None;
    }
    if entry == "*" {
        return Some(Bypass::All);
    }
    if let Some((net, bits)) = entry.split_once('/') {
        let net = net
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.parse::<u8>().ok().filter(|b| *b <= max)?;
        return Some(Bypass::Net(net, bits));
    }
    let bare = entry.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(Bypass::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
    }
    if let Some((host, _port)) = split_host_port(entry) {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Some(Bypass::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        let domain = host
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        return (!domain.is_empty()).then_some(Bypass::Domain(domain));
    }
    None
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// `host[:port]` (IPv6 in brackets) → host and the port if given; `None` for a bad port.
fn split_host_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    let port_start = if hostport.starts_with('[') {
        hostport.find(']').map(|end| end + 1)?
    } else {
        hostport.rfind(':').unwrap_or(hostport.len())
    };
    let (host, port) = hostport.split_at(port_start);
    match port.strip_prefix(':') {
        Some(port) => Some((host, Some(port.parse().ok()?))),
        None if port.is_empty() => Some((host, None)),
        None => None,
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A proxy URL with its password hidden, for error messages.
fn redact(url: &str) -> String {
    if url.contains("://") {
        super::redact_url(url)
    } else {
        super::redact_url(&format!("http://{url}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_with_credentials_and_default_port() {
        let proxy = Proxy::new("http://al%40ice:p%3Ass@proxy.test:3128/").unwrap();
        assert_eq!(proxy.authority(), "proxy.test:3128");
        assert_eq!(proxy.user.as_deref(), Some("al@ice"));
        let expected = base64::engine::general_purpose::STANDARD.encode("al@ice:p:ss");
        assert_eq!(proxy.credentials.as_deref(), Some(expected.as_str()));
        assert_eq!(
            Proxy::new("proxy.test").unwrap().authority(),
            "proxy.test:80"
        );
        assert_eq!(
            Proxy::new("http://[::1]:8080").unwrap().authority(),
            "[::1]:8080"
        );
        assert!(Proxy::new("socks5://proxy.test:1080").is_err());
        assert!(Proxy::new("http://proxy.test:99999").is_err());
        assert!(Proxy::new("http://:3128").is_err());
    }

    #[test]
    fn credentials_never_show_in_debug_or_errors() {
        let proxy = Proxy::new("http://user:hunter2@proxy.test:3128").unwrap();
        assert!(!format!("{proxy:?}").contains("hunter2"));
        let error = Proxy::new("https://user:hunter2@proxy.test").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn bypass_matches_hosts_suffixes_ips_and_networks() {
        let proxy = Proxy::new("http://proxy.test:3128").unwrap().no_proxy([
            "localhost",
            ".corp.example, intra.test:8080",
            "192.168.1.7",
            "10.0.0.0/8",
            "[::1]",
        ]);
        assert!(proxy.bypasses("localhost"));
        assert!(proxy.bypasses("LOCALHOST."));
        assert!(proxy.bypasses("corp.example"));
        assert!(proxy.bypasses("feed.corp.example"));
        assert!(!proxy.bypasses("notcorp.example"));
        assert!(proxy.bypasses("a.intra.test"));
        assert!(proxy.bypasses("192.168.1.7"));
        assert!(!proxy.bypasses("192.168.1.8"));
        assert!(proxy.bypasses("10.200.3.4"));
        assert!(proxy.bypasses("[::1]"));
        assert!(!proxy.bypasses("127.0.0.1"));
        assert!(!proxy.bypasses("example.com"));
        let all = Proxy::new("proxy.test").unwrap().no_proxy(["*"]);
        assert!(all.bypasses("example.com"));
    }

    #[test]
    fn environment_is_read_by_scheme_lowercase_first() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let vars = &[
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:2"),
            ("HTTP_PROXY", "http://plain:3"),
            ("NO_PROXY", "internal.test"),
        ];
        let secure = from_lookup(true, env(vars)).unwrap().unwrap();
        assert_eq!(secure.authority(), "lower:2");
        assert!(secure.bypasses("x.internal.test"));
        let plain = from_lookup(false, env(vars)).unwrap().unwrap();
        assert_eq!(plain.authority(), "plain:3");
        let all = from_lookup(true, env(&[("ALL_PROXY", "http://all:4")])).unwrap();
        assert_eq!(all.unwrap().authority(), "all:4");
        assert!(from_lookup(false, env(&[("https_proxy", "http://s:5")]))
            .unwrap()
            .is_none());
        assert!(from_lookup(false, env(&[("http_proxy", "socks5://s:5")])).is_err());
    }

    #[actix_rt::test]
    async fn connect_request_and_answers() {
        let proxy = Proxy::new("http://u:p@proxy.test:3128").unwrap();
        let (mut client, mut server) = tokio::io::duplex(4096);
        let serve = async {
            let mut buf = vec![0u8; 1024];
            let n = server.read(&mut buf).await.unwrap();
            server
                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        let (result, request) = futures::join!(proxy.tunnel(&mut client, "[::1]", 9000), serve);
        assert_eq!(
            request,
            "CONNECT [::1]:9000 HTTP/1.1\r\nHost: [::1]:9000\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
        assert_eq!(
            result,
            Err(Error::Proxy {
                status: 407,
                reason: "Proxy Authentication Required".into()
            })
        );
    }
}
