//! Proxy test support: an HTTP `CONNECT` proxy on 127.0.0.1 written on tokio, and a logger
//! that keeps every log line so tests can check no secret was logged.
//!
//! Included by `tests/proxy.rs` with `#[path = "common/proxy.rs"] mod proxy_support;`.
//! The proxy only tunnels to 127.0.0.1 (anything else gets 403), every read it does is
//! bounded in time, and `stop` aborts its listener and every tunnel it opened.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// How the proxy answers `CONNECT`.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Opens the tunnel; when `credentials` is `Some("user:password")`, only for a request
    /// carrying `Proxy-Authorization: Basic base64(user:password)` (else 407).
    Tunnel { credentials: Option<String> },
    /// Answers every `CONNECT` with this status.
    Refuse(u16),
    /// Reads the request and never answers.
    Silent,
}

/// One `CONNECT` the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The request target (`host:port`).
    pub target: String,
    /// The `Proxy-Authorization` value, if any.
    pub authorization: Option<String>,
}

/// A `CONNECT` proxy on 127.0.0.1:0.
pub struct ConnectProxy {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl ConnectProxy {
    /// Starts the proxy on the current runtime.
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (seen, tasks) = (seen.clone(), tasks.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let serve = tokio::spawn(serve(client, mode.clone(), seen.clone()));
                    tasks.lock().unwrap().push(serve.abort_handle());
                }
            })
        };
        tasks.lock().unwrap().push(accept.abort_handle());
        Self { addr, seen, tasks }
    }

    /// `http://127.0.0.1:PORT`, with `user:password@` when given.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(userinfo) => format!("http://{userinfo}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// Every `CONNECT` received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Stops the listener and every tunnel.
    pub fn stop(self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn serve(mut client: TcpStream, mode: Mode, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        let read = tokio::time::timeout(Duration::from_secs(10), client.read(&mut chunk)).await;
        match read {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&chunk[..n]),
            _ => return,
        }
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > 8192 {
            return;
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(
        request.parse(&head[..end]),
        Ok(httparse::Status::Complete(_))
    ) || request.method != Some("CONNECT")
    {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        return;
    }
    let target = request.path.unwrap_or_default().to_string();
    let authorization = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned());
    seen.lock().unwrap().push(Seen {
        target: target.clone(),
        authorization: authorization.clone(),
    });
    let answer = |status: u16, reason: &str| {
        format!("HTTP/1.1 {status} {reason}\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
    };
    match mode {
        Mode::Silent => {
            // Hold the connection open without a word until the test aborts us.
            let _ = tokio::time::timeout(Duration::from_secs(30), client.read(&mut chunk)).await;
        }
        Mode::Refuse(status) => {
            let _ = client.write_all(answer(status, "Refused").as_bytes()).await;
        }
        Mode::Tunnel { credentials } => {
            let expected = credentials.map(|c| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(c)
                )
            });
            if expected.is_some() && authorization != expected {
                let _ = client
                    .write_all(answer(407, "Proxy Authentication Required").as_bytes())
                    .await;
                return;
            }
            // Loopback only: no test reaches beyond 127.0.0.1.
            if !target.starts_with("127.0.0.1:") {
                let _ = client.write_all(answer(403, "Forbidden").as_bytes()).await;
                return;
            }
            let Ok(mut upstream) = TcpStream::connect(&target).await else {
                let _ = client
                    .write_all(answer(502, "Bad Gateway").as_bytes())
                    .await;
                return;
            };
            if client
                .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
    }
}

/// Every log line of the test binary, kept (installed once, at trace level).
pub fn captured_logs() -> &'static Mutex<Vec<String>> {
    struct Capture;
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            let line = format!("{} {}: {}", record.level(), record.target(), record.args());
            LINES
                .get_or_init(Default::default)
                .lock()
                .unwrap()
                .push(line);
        }
        fn flush(&self) {}
    }
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if log::set_boxed_logger(Box::new(Capture)).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    LINES.get_or_init(Default::default)
}
