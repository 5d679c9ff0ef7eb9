//! Shared test helpers: connecting with the quiet test configuration and closing a session
//! (returning its `CloseInfo`), an actix-web echo server (whose echo loop the TLS echo server
//! in `common/tls.rs` reuses), a scripted raw-TCP WebSocket server that can misbehave on
//! purpose, a recorder actor for the `connect(recipient)` API, and the `client` example built
//! and run as a child process.
//!
//! Every server here listens on 127.0.0.1 only and is stopped by the test that started it;
//! every wait is bounded.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler, Recipient};
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::{AggregatedMessage, AggregatedMessageStream};
use actix_ws_session::{
    ClientBuilder, ClientSession, CloseInfo, Config, Connection, Error, Incoming, Session,
};
use futures::channel::mpsc;
use futures::{Stream, StreamExt};

/// The generous bound on every single wait in the suite.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    within_for(WAIT, what, fut).await
}

/// Awaits `fut`, failing the test with `what` if it takes longer than `limit`.
pub async fn within_for<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// The next event of a session (fails the test after [`WAIT`] or at the end of the stream).
pub async fn next_event<S: Stream<Item = Incoming> + Unpin>(events: &mut S) -> Incoming {
    within("the next session event", events.next())
        .await
        .expect("event stream ended without an event")
}

/// Collects events until `Closed`; returns the events before it and the close info.
pub async fn until_closed<S: Stream<Item = Incoming> + Unpin>(
    events: &mut S,
) -> (Vec<Incoming>, CloseInfo) {
    let mut seen = Vec::new();
    loop {
        match next_event(events).await {
            Incoming::Closed(info) => return (seen, info),
            other => seen.push(other),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Connecting and closing
// ---------------------------------------------------------------------------------------

/// The configuration most tests use: the default without the pinger, so that no Ping
/// interleaves with what a test expects.
pub fn quiet() -> Config {
    Config::default().ping_interval(None)
}

/// Connects to `url` with `config` (within [`WAIT`]); fails the test if it does not connect.
pub async fn connect_with(url: impl Into<String>, config: Config) -> Session {
    within(
        "connect",
        ClientSession::builder(url).config(config).connect_stream(),
    )
    .await
    .unwrap()
}

/// Connects to `url` with the [`quiet`] configuration.
pub async fn connect_quiet(url: impl Into<String>) -> Session {
    connect_with(url, quiet()).await
}

/// Connects `recipient` to `url` with the [`quiet`] configuration (within [`WAIT`]); fails
/// the test if it does not connect.
pub async fn connect_quiet_to(
    url: impl Into<String>,
    recipient: Recipient<Incoming>,
) -> Connection {
    within(
        "connect",
        ClientSession::builder(url)
            .config(quiet())
            .connect(recipient),
    )
    .await
    .unwrap()
}

/// Connects with `builder` (`connect_stream`, within [`WAIT`]), which must fail; returns the
/// error.
pub async fn connect_error(builder: ClientBuilder) -> Error {
    match within("connect", builder.connect_stream()).await {
        Ok(session) => panic!(
            "the connection should have failed; handshake: {:?}",
            session.handshake
        ),
        Err(error) => error,
    }
}

/// Asks the session to close with `code` and `reason` (the request must be accepted) and
/// collects the events up to `Closed`: the events before it and the close info.
pub async fn close_with(
    session: &mut Session,
    code: u16,
    reason: &str,
) -> (Vec<Incoming>, CloseInfo) {
    within("close", session.handle.close(code, reason))
        .await
        .unwrap();
    until_closed(&mut session.incoming).await
}

/// Runs the close handshake with code 1000 and no reason and checks that it was clean;
/// returns the events before `Closed` and the close info.
pub async fn close_cleanly(session: &mut Session) -> (Vec<Incoming>, CloseInfo) {
    let (events, info) = close_with(session, 1000, "").await;
    assert!(info.clean, "{info:?}");
    (events, info)
}

/// Sends `text`, expects exactly that text back as the next event, then closes cleanly.
pub async fn echo_text_and_close(mut session: Session, text: &str) {
    session.handle.send_text(text).await.unwrap();
    match next_event(&mut session.incoming).await {
        Incoming::Text(echo) => assert_eq!(echo, text),
        other => panic!("expected the echo, got {other:?}"),
    }
    close_cleanly(&mut session).await;
}

// ---------------------------------------------------------------------------------------
// Echo server (actix-web + actix-ws)
// ---------------------------------------------------------------------------------------

/// An in-process actix-web server on 127.0.0.1:0 with WebSocket routes:
///
/// * `/echo`: text back as text, binary as binary (continuations aggregated up to
///   128 MiB, frames up to 32 MiB), pings answered, a Close echoed;
/// * `/chat`: the same, answering with `Sec-WebSocket-Protocol: chat`;
/// * `/forbidden`: `403` with header `x-reason: members-only` and body `go away`.
pub struct EchoServer {
    addr: SocketAddr,
    handle: ServerHandle,
}

async fn echo_ws(req: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(32 << 20)
        .aggregate_continuations()
        .max_continuation_size(128 << 20);
    spawn_echo(session, stream);
    Ok(response)
}

/// Spawns the echo loop of a WebSocket server route: text back as text, binary as binary,
/// pings answered, a Close echoed (which ends the loop, as does a failed send).
pub fn spawn_echo(mut session: actix_ws::Session, mut stream: AggregatedMessageStream) {
    actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let sent = match message {
                AggregatedMessage::Text(text) => session.text(text).await,
                AggregatedMessage::Binary(bytes) => session.binary(bytes).await,
                AggregatedMessage::Ping(payload) => session.pong(&payload).await,
                AggregatedMessage::Pong(_) => Ok(()),
                AggregatedMessage::Close(reason) => {
                    let _ = session.close(reason).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
}

async fn chat_ws(req: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
    let mut response = echo_ws(req, body).await?;
    response.headers_mut().insert(
        actix_web::http::header::SEC_WEBSOCKET_PROTOCOL,
        actix_web::http::header::HeaderValue::from_static("chat"),
    );
    Ok(response)
}

/// The `/forbidden` route of the echo servers (this one and the TLS one): `403` with header
/// `x-reason: members-only` and body `go away`.
pub async fn forbidden() -> HttpResponse {
    HttpResponse::Forbidden()
        .insert_header(("x-reason", "members-only"))
        .content_type("text/plain")
        .body("go away")
}

/// Spawns a bound, running actix-web server on the current actix system; returns its handle.
pub fn spawn_server(server: Server) -> ServerHandle {
    let handle = server.handle();
    actix_web::rt::spawn(server);
    handle
}

impl EchoServer {
    /// Starts the server on the current actix system.
    pub fn start() -> Self {
        let server = HttpServer::new(|| {
            App::new()
                .route("/echo", web::get().to(echo_ws))
                .route("/chat", web::get().to(chat_ws))
                .route("/forbidden", web::get().to(forbidden))
        })
        .workers(1)
        .shutdown_timeout(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind 127.0.0.1:0");
        let addr = server.addrs()[0];
        let handle = spawn_server(server.run());
        Self { addr, handle }
    }

    /// `ws://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Stops the server (gracefully, bounded by its 1 s shutdown timeout).
    pub async fn stop(self) {
        within("the echo server to stop", self.handle.stop(true)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Recorder actor
// ---------------------------------------------------------------------------------------

/// An actor that forwards every [`Incoming`] it handles into a channel.
pub struct Recorder {
    events: mpsc::UnboundedSender<Incoming>,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<Incoming> for Recorder {
    type Result = ();

    fn handle(&mut self, event: Incoming, _: &mut Context<Self>) {
        let _ = self.events.unbounded_send(event);
    }
}

/// Starts a [`Recorder`]; returns its recipient and the stream of what it handled.
pub fn recorder() -> (Recipient<Incoming>, mpsc::UnboundedReceiver<Incoming>) {
    let (events, received) = mpsc::unbounded();
    let addr = Recorder { events }.start();
    (addr.recipient(), received)
}

// ---------------------------------------------------------------------------------------
// Scripted raw-TCP server
// ---------------------------------------------------------------------------------------

/// Opcodes, for writing frames by hand.
pub mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// The head of a frame: any FIN/RSV/opcode/mask/length, even illegal ones.
pub fn frame_head(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 0b111) << 4) | (opcode & 0x0F)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole frame (unmasked unless `mask` is given).
pub fn raw_frame(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_head(fin, rsv, opcode, mask, payload.len() as u64);
    match mask {
        Some(key) => out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4])),
        None => out.extend_from_slice(payload),
    }
    out
}

/// An unmasked, unfragmented server frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(true, 0, opcode, None, payload)
}

/// A Close frame payload: code and reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(reason.as_bytes());
    out
}

/// A frame the client sent, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    /// The mask key, if the mask bit was set.
    pub mask: Option<[u8; 4]>,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
    /// The payload exactly as it was on the wire.
    pub wire_payload: Vec<u8>,
}

impl ClientFrame {
    /// Code and reason of a Close frame (`None` for an empty Close payload).
    pub fn close(&self) -> Option<(u16, String)> {
        assert_eq!(self.opcode, op::CLOSE, "not a Close frame: {self:?}");
        if self.payload.len() < 2 {
            return None;
        }
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        Some((
            code,
            String::from_utf8_lossy(&self.payload[2..]).into_owned(),
        ))
    }

    /// The payload as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// The client's upgrade request.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
}

impl UpgradeRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The correct `Sec-WebSocket-Accept` for this request.
    pub fn accept_key(&self) -> String {
        let key = self
            .header("sec-websocket-key")
            .expect("upgrade request without Sec-WebSocket-Key");
        String::from_utf8(actix_http::ws::hash_key(key.as_bytes()).to_vec()).unwrap()
    }

    /// A correct 101 response head, with `extra` header lines (each `Name: value`).
    pub fn switching(&self, extra: &[&str]) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
            self.accept_key()
        );
        for line in extra {
            head.push_str(line);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// The server side of one scripted connection.
pub struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The upgrade request the client sent.
    pub request: UpgradeRequest,
    /// Every frame read from the client so far, in order.
    pub received: Vec<ClientFrame>,
}

impl Peer {
    /// The underlying socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes raw bytes (one `write_all`).
    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("scripted server write");
        self.stream.flush().expect("scripted server flush");
    }

    /// Writes an unmasked, unfragmented frame.
    pub fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.write(&frame(opcode, payload));
    }

    /// Writes a Close frame with `code` and `reason`.
    pub fn send_close(&mut self, code: u16, reason: &str) {
        self.send(op::CLOSE, &close_payload(code, reason));
    }

    fn fill(&mut self, want: usize, deadline: Instant) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        while self.buf.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "scripted read"));
            }
            self.stream.set_read_timeout(Some(left))?;
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client EOF"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    }

    /// Reads and decodes the next client frame within `limit`, recording it.
    pub fn read_frame_within(&mut self, limit: Duration) -> io::Result<ClientFrame> {
        let deadline = Instant::now() + limit;
        self.fill(2, deadline)?;
        let (b0, b1) = (self.buf[0], self.buf[1]);
        let masked = b1 & 0x80 != 0;
        let (len, mut at) = match b1 & 0x7F {
            126 => {
                self.fill(4, deadline)?;
                (u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]])), 4)
            }
            127 => {
                self.fill(10, deadline)?;
                let mut be = [0u8; 8];
                be.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(be), 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            self.fill(at + 4, deadline)?;
            let key = [
                self.buf[at],
                self.buf[at + 1],
                self.buf[at + 2],
                self.buf[at + 3],
            ];
            at += 4;
            Some(key)
        } else {
            None
        };
        let len = usize::try_from(len).expect("frame length fits usize");
        self.fill(at + len, deadline)?;
        let wire_payload: Vec<u8> = self.buf[at..at + len].to_vec();
        self.buf.drain(..at + len);
        let payload = match mask {
            Some(key) => wire_payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect(),
            None => wire_payload.clone(),
        };
        let frame = ClientFrame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode: b0 & 0x0F,
            mask,
            payload,
            wire_payload,
        };
        self.received.push(frame.clone());
        Ok(frame)
    }

    /// Reads the next client frame (within [`WAIT`]); panics if there is none.
    pub fn read_frame(&mut self) -> ClientFrame {
        self.read_frame_within(WAIT)
            .expect("scripted server: reading a client frame")
    }

    /// Reads frames until a Close frame (returned), within [`WAIT`] overall.
    pub fn read_until_close(&mut self) -> ClientFrame {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self
                .read_frame_within(left)
                .expect("scripted server: reading until the client's Close");
            if frame.opcode == op::CLOSE {
                return frame;
            }
        }
    }

    /// Reads frames until a Close, answering Pings, then echoes the Close code and waits
    /// (bounded) for the client to end the socket. Returns the client's Close frame.
    pub fn finish_close_handshake(&mut self) -> ClientFrame {
        let deadline = Instant::now() + WAIT;
        let close = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self
                .read_frame_within(left)
                .expect("scripted server: reading until the client's Close");
            match frame.opcode {
                op::CLOSE => break frame,
                op::PING => self.send(op::PONG, &frame.payload),
                _ => {}
            }
        };
        let echo = match close.close() {
            Some((code, _)) => code.to_be_bytes().to_vec(),
            None => Vec::new(),
        };
        let _ = self.stream.write_all(&frame(op::CLOSE, &echo));
        self.wait_for_eof(Duration::from_secs(5));
        close
    }

    /// Discards input until the client ends the socket (or `limit` passes); returns whether
    /// the socket ended (EOF or reset) within `limit`.
    pub fn wait_for_eof(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

/// A scripted server that reads nothing until `go` is signalled, so that what the client
/// writes piles up in the socket buffers; it then reads Binary messages until the Close
/// frame, answers it, and returns how many messages and payload bytes it read.
pub fn server_reading_after(go: std::sync::mpsc::Receiver<()>) -> ScriptedServer<(usize, usize)> {
    ScriptedServer::start(move |peer| {
        go.recv_timeout(2 * WAIT)
            .expect("the test never let the server read");
        let (mut messages, mut bytes) = (0usize, 0usize);
        loop {
            let f = peer.read_frame();
            match f.opcode {
                op::BINARY | op::CONTINUATION => {
                    bytes += f.payload.len();
                    messages += usize::from(f.fin);
                }
                op::CLOSE => {
                    peer.send(op::CLOSE, &f.payload);
                    peer.wait_for_eof(Duration::from_secs(5));
                    return (messages, bytes);
                }
                other => panic!("unexpected opcode {other}"),
            }
            peer.received.clear(); // do not keep megabytes of copies
        }
    })
}

/// A raw TCP server on 127.0.0.1:0 that accepts ONE connection on its own thread, answers
/// the upgrade request, then runs a script on the raw socket.
pub struct ScriptedServer<T> {
    addr: SocketAddr,
    result: tokio::sync::oneshot::Receiver<std::thread::Result<T>>,
}

impl<T: std::marker::Send + 'static> ScriptedServer<T> {
    /// Answers the upgrade with a correct 101, then runs `script`.
    pub fn start(script: impl FnOnce(&mut Peer) -> T + std::marker::Send + 'static) -> Self {
        Self::start_with(|request| request.switching(&[]), script)
    }

    /// Answers the upgrade with whatever `respond` returns (written in ONE write; empty:
    /// nothing is written), then runs `script`.
    pub fn start_with(
        respond: impl FnOnce(&UpgradeRequest) -> Vec<u8> + std::marker::Send + 'static,
        script: impl FnOnce(&mut Peer) -> T + std::marker::Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(move || {
                let stream = accept_one(&listener);
                drop(listener);
                let mut peer = Peer {
                    stream,
                    buf: Vec::new(),
                    request: UpgradeRequest {
                        request_line: String::new(),
                        headers: Vec::new(),
                    },
                    received: Vec::new(),
                };
                peer.request = read_request(&mut peer);
                let response = respond(&peer.request);
                if !response.is_empty() {
                    peer.write(&response);
                }
                script(&mut peer)
            }));
            let _ = done.send(outcome);
        });
        Self { addr, result }
    }

    /// `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Waits (bounded by 2 × [`WAIT`]) for the script to end and returns its result; a
    /// panic in the script fails the test here.
    pub async fn join(self) -> T {
        let outcome = within_for(2 * WAIT, "the scripted server to finish", self.result)
            .await
            .expect("scripted server thread vanished");
        match outcome {
            Ok(value) => value,
            Err(panic) => panic::resume_unwind(panic),
        }
    }
}

fn accept_one(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + 2 * WAIT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream.set_nodelay(true).unwrap();
                return stream;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no client connected");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn read_request(peer: &mut Peer) -> UpgradeRequest {
    let deadline = Instant::now() + WAIT;
    let end = loop {
        if let Some(at) = peer.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let want = peer.buf.len() + 1;
        peer.fill(want, deadline)
            .expect("reading the upgrade request");
    };
    let head = String::from_utf8_lossy(&peer.buf[..end]).into_owned();
    peer.buf.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    UpgradeRequest {
        request_line,
        headers,
    }
}

// ---------------------------------------------------------------------------------------
// The `client` example, run as a child process
// ---------------------------------------------------------------------------------------

/// Builds the example (a no-op when it is fresh) and returns its path, next to this test's
/// own binary (`target/<profile>/examples/client`), so it works on a fresh clone and with
/// any `CARGO_TARGET_DIR`.
pub fn client_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let mut build = Command::new(env!("CARGO"));
            build
                .args(["build", "--example", "client"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if !cfg!(debug_assertions) {
                build.arg("--release");
            }
            // Cargo sets these for this test process; passed on, they would look like a
            // changed environment to build scripts that watch them (ring's does), and the
            // nested build and the next `cargo test` would keep rebuilding each other.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy().into_owned();
                let set_for_tests = ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_", "__CARGO"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                    || [
                        "CARGO_CRATE_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                        "CARGO_RUSTC_CURRENT_DIR",
                        "OUT_DIR",
                    ]
                    .contains(&name.as_str());
                if set_for_tests {
                    build.env_remove(&name);
                }
            }
            let status = build.status().expect("run cargo build --example client");
            assert!(status.success(), "cargo build --example client failed");
            let exe = std::env::current_exe().unwrap();
            // target/<profile>/deps/client_example-HASH → target/<profile>/examples/client
            let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
            let path = profile_dir
                .join("examples")
                .join(format!("client{}", std::env::consts::EXE_SUFFIX));
            assert!(path.exists(), "{} was not built", path.display());
            path
        })
        .clone()
}

/// Builds the example on a blocking thread (outside the timing-sensitive part of a test).
pub async fn build_client_example() {
    actix_web::rt::task::spawn_blocking(client_binary)
        .await
        .unwrap();
}

/// Runs the example with `args`, feeding `stdin` then closing it, on a blocking thread; kills
/// it (failing the test) if it still runs after `kill_after`, and fails the test if it has
/// not ended within `kill_after` + [`WAIT`].
pub async fn run_client(args: Vec<String>, stdin: &'static [u8], kill_after: Duration) -> Output {
    within_for(
        kill_after + WAIT,
        "the client example",
        actix_web::rt::task::spawn_blocking(move || run_client_blocking(&args, stdin, kill_after)),
    )
    .await
    .unwrap()
}

fn run_client_blocking(args: &[String], stdin: &[u8], kill_after: Duration) -> Output {
    let mut child = Command::new(client_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client example");
    {
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin).unwrap();
    } // dropped: end of input
    let deadline = Instant::now() + kill_after;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "client example still running after {kill_after:?}; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
