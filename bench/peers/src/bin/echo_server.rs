//! Fast multi-threaded WebSocket echo server used as the fixed peer for all
//! client load measurements.
//!
//! Usage: `echo_server [--port P] [--threads N] [--impl fastwebsockets|tokio-websockets|reflect]`
//! (default fastwebsockets: in A/B runs it echoed the most messages per
//! server CPU tick, especially for pipelined small messages, of the two
//! library servers). `reflect` is no library: it echoes every frame one read
//! brought back in one write, so that it costs far less per small message than
//! the clients and the client, not the server, sets the rate (see
//! `bench/RESULTS.md`, "A server cheaper than the clients").
//!
//! `--port 0` (the default) lets the kernel pick a port. The first stdout line
//! is always `LISTENING <port>`. Text is echoed as text, binary as binary,
//! pings are answered, closes are completed. Messages up to 64 MiB are
//! accepted.

use std::io::Write as _;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_MESSAGE: usize = 64 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Impl {
    TokioWebsockets,
    FastWebsockets,
    Reflect,
}

fn main() {
    let mut port: u16 = 0;
    let mut threads: usize = 1;
    let mut imp = Impl::FastWebsockets;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| die(&format!("{a} needs a value")));
        match a.as_str() {
            "--port" => port = val().parse().unwrap_or_else(|_| die("bad --port")),
            "--threads" => threads = val().parse().unwrap_or_else(|_| die("bad --threads")),
            "--impl" => {
                imp = match val().as_str() {
                    "tokio-websockets" => Impl::TokioWebsockets,
                    "fastwebsockets" => Impl::FastWebsockets,
                    "reflect" => Impl::Reflect,
                    other => die(&format!("unknown --impl {other}")),
                }
            }
            "-h" | "--help" => {
                println!("echo_server [--port P] [--threads N] [--impl tokio-websockets|fastwebsockets|reflect]");
                return;
            }
            other => die(&format!("unknown argument {other}")),
        }
    }
    raise_nofile();
    let threads = threads.max(1);
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    rt.block_on(serve(port, imp));
}

fn die(msg: &str) -> ! {
    eprintln!("echo_server: {msg}");
    std::process::exit(2)
}

fn raise_nofile() {
    // SAFETY: plain libc calls on a stack-allocated struct.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

async fn serve(port: u16, imp: Impl) {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_reuseaddr(true).ok();
    sock.bind(([127, 0, 0, 1], port).into()).expect("bind 127.0.0.1");
    let listener: TcpListener = sock.listen(4096).expect("listen");
    let bound = listener.local_addr().expect("local_addr").port();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "LISTENING {bound}").ok();
        out.flush().ok();
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("echo_server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        stream.set_nodelay(true).ok();
        match imp {
            Impl::TokioWebsockets => {
                tokio::spawn(tws_conn(stream));
            }
            Impl::FastWebsockets => {
                tokio::spawn(fws_conn(stream));
            }
            Impl::Reflect => {
                tokio::spawn(reflect_conn(stream));
            }
        }
    }
}

/// tokio-websockets echo: feeds every message that is already decodable and
/// flushes once per batch, so pipelined small messages cost one write(2).
async fn tws_conn(stream: TcpStream) {
    use tokio_websockets::{Config, Limits, ServerBuilder};
    let accepted = ServerBuilder::new()
        .config(Config::default().frame_size(MAX_MESSAGE).flush_threshold(64 << 10))
        .limits(Limits::default().max_payload_len(Some(MAX_MESSAGE)))
        .accept(stream)
        .await;
    let Ok((_req, mut ws)) = accepted else { return };
    'conn: while let Some(first) = ws.next().await {
        let mut msg = match first {
            Ok(m) => m,
            Err(_) => break,
        };
        loop {
            // Pings/pongs/closes are answered by the library itself.
            if (msg.is_binary() || msg.is_text()) && ws.feed(msg).await.is_err() {
                break 'conn;
            }
            match ws.next().now_or_never() {
                Some(Some(Ok(m))) => msg = m,
                Some(Some(Err(_))) | Some(None) => break 'conn,
                None => break,
            }
        }
        if ws.flush().await.is_err() {
            break;
        }
    }
    let _ = ws.close().await;
}

/// fastwebsockets echo over a hand-rolled RFC 6455 handshake (no hyper).
async fn fws_conn(mut stream: TcpStream) {
    use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
    if handshake(&mut stream).await.is_none() {
        return;
    }
    let mut ws = WebSocket::after_handshake(stream, Role::Server);
    ws.set_max_message_size(MAX_MESSAGE);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    ws.set_writev(true);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = match ws.read_frame().await {
            Ok(f) => f,
            Err(_) => break,
        };
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => {
                if ws.write_frame(frame).await.is_err() {
                    break;
                }
            }
            _ => {}
        }
    }
}

/// Raw echo over the hand-rolled handshake: every complete (masked) client frame that a
/// read brought is unmasked and appended to one output buffer as a server frame (same FIN
/// bit and opcode, so fragments echo as fragments), and the buffer goes out in one write.
/// Pings are answered with pongs, pongs are dropped, a Close is echoed and ends the
/// connection; an unmasked or oversized frame ends it too.
async fn reflect_conn(mut stream: TcpStream) {
    use bytes::Buf as _;
    if handshake(&mut stream).await.is_none() {
        return;
    }
    let mut input = bytes::BytesMut::with_capacity(64 << 10);
    let mut out: Vec<u8> = Vec::with_capacity(64 << 10);
    loop {
        if input.capacity() - input.len() < 16 << 10 {
            input.reserve(64 << 10);
        }
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut pos = 0;
        let mut end = false;
        loop {
            match reflect_frame(&input[pos..], &mut out) {
                Reflected::Frame(used) => pos += used,
                Reflected::Close(used) => {
                    pos += used;
                    end = true;
                    break;
                }
                Reflected::Incomplete => break,
                Reflected::Invalid => return,
            }
        }
        input.advance(pos);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if end {
            return;
        }
    }
}

enum Reflected {
    /// A frame of this many bytes was consumed (and its answer, if any, appended).
    Frame(usize),
    /// A Close frame of this many bytes was consumed and echoed.
    Close(usize),
    Incomplete,
    Invalid,
}

/// Parses the client frame at the start of `buf` and appends the server's answer to `out`.
fn reflect_frame(buf: &[u8], out: &mut Vec<u8>) -> Reflected {
    if buf.len() < 2 {
        return Reflected::Incomplete;
    }
    let (first, second) = (buf[0], buf[1]);
    if second & 0x80 == 0 {
        return Reflected::Invalid; // client frames must be masked
    }
    let (len, mut at) = match second & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4),
        127 if buf.len() >= 10 => {
            let mut word = [0u8; 8];
            word.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(word), 10)
        }
        126 | 127 => return Reflected::Incomplete,
        short => (u64::from(short), 2),
    };
    if len > MAX_MESSAGE as u64 {
        return Reflected::Invalid;
    }
    let len = len as usize;
    if buf.len() < at + 4 + len {
        return Reflected::Incomplete;
    }
    let key = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    at += 4;
    let payload = &buf[at..at + len];
    let used = at + len;
    let answer_first = match first & 0x0f {
        0x9 => 0x8a,                          // ping: answer with a pong
        0xa => return Reflected::Frame(used), // pong: nothing to answer
        _ => first,
    };
    out.push(answer_first);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    let start = out.len();
    out.extend_from_slice(payload);
    fastwebsockets::unmask(&mut out[start..], key);
    if first & 0x0f == 0x8 {
        Reflected::Close(used)
    } else {
        Reflected::Frame(used)
    }
}

async fn handshake(stream: &mut TcpStream) -> Option<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let key = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(used)) => {
                if used != buf.len() {
                    return None; // client pipelined frames before the 101; not supported
                }
                let key = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))?
                    .value
                    .to_vec();
                break key;
            }
            Ok(httparse::Status::Partial) if buf.len() < 16 << 10 => continue,
            _ => return None,
        }
    };
    let mut sha = sha1_smol::Sha1::new();
    sha.update(&key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    use base64::Engine as _;
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(resp.as_bytes()).await.ok()?;
    Some(())
}
