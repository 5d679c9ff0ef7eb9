//! A command-line WebSocket client on this crate, in the spirit of websocat.
//!
//! ```text
//! cargo run --example client -- [OPTIONS] URL
//! ```
//!
//! Every line of standard input is sent as a text message; at end of input the client sends
//! `Close(1000)`, waits for the close handshake and exits. Every text message received is
//! printed on standard output as one line, every binary message as `<binary N bytes>`. The
//! last line on standard error is `closed code=N clean=true|false`; the exit status is 0
//! after a clean close and 1 otherwise.
//!
//! Options:
//!   --no-mask                send unmasked frames (SetMasking(false) right after connecting)
//!   --ping-interval MS       ping every MS milliseconds (off unless given)
//!   --ping-timeout MS        fail when a pong takes longer than MS milliseconds
//!   --close-timeout MS       how long to wait for the peer to finish closing
//!   --max-message-size BYTES largest message accepted
//!   --header 'Name: value'   extra request header (repeatable)
//!   --protocol NAME          offer a subprotocol (repeatable)
//!   --ca FILE                also trust the CA certificates in this PEM file (wss://)
//!   --proxy URL              connect through this HTTP proxy: http://[user:pass@]host:port
//!
//! `wss://` servers are always verified (the Mozilla roots, plus `--ca`); there is no option
//! to turn verification off. A refused connection (untrusted certificate, wrong host name,
//! proxy refusal) prints `error: ...` and `closed code=1006 clean=false` and exits 1.

use std::io::{BufRead, Write as _};
use std::process::ExitCode;
use std::time::Duration;

#[cfg(feature = "rustls")]
use actix_ws_session::TlsConfig;
use actix_ws_session::{ClientSession, CloseCode, Config, Incoming, Proxy};
use futures::{SinkExt, StreamExt};

struct Options {
    url: String,
    no_mask: bool,
    headers: Vec<(String, String)>,
    protocols: Vec<String>,
    config: Config,
    ca: Option<String>,
    proxy: Option<String>,
}

const USAGE: &str = "usage: client [--no-mask] [--ping-interval MS] [--ping-timeout MS] \
[--close-timeout MS] [--max-message-size BYTES] [--header 'Name: value']... [--protocol NAME]... \
[--ca FILE] [--proxy URL] URL";

fn parse_options() -> Result<Options, String> {
    let mut url = None;
    let mut no_mask = false;
    let mut headers = Vec::new();
    let mut protocols = Vec::new();
    let mut ca = None;
    let mut proxy = None;
    let mut config = Config::default().ping_interval(None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let millis = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| format!("{arg}: {e}"))
        };
        match arg.as_str() {
            "--no-mask" => no_mask = true,
            "--ping-interval" => config = config.ping_interval(Some(millis(value()?)?)),
            "--ping-timeout" => config = config.ping_timeout(millis(value()?)?),
            "--close-timeout" => config = config.close_timeout(millis(value()?)?),
            "--max-message-size" => {
                let bytes = value()?.parse().map_err(|e| format!("{arg}: {e}"))?;
                config = config.max_message_size(bytes);
            }
            "--header" => {
                let header = value()?;
                let (name, value) = header
                    .split_once(':')
                    .ok_or(format!("--header {header:?}: expected 'Name: value'"))?;
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
            "--protocol" => protocols.push(value()?),
            "--ca" => ca = Some(value()?),
            "--proxy" => proxy = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{USAGE}"))
            }
            other => url = Some(other.to_string()),
        }
    }
    Ok(Options {
        url: url.ok_or(USAGE)?,
        no_mask,
        headers,
        protocols,
        config,
        ca,
        proxy,
    })
}

/// Reads standard input on its own thread, one line at a time.
fn stdin_lines() -> futures::channel::mpsc::Receiver<String> {
    let (mut tx, rx) = futures::channel::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if futures::executor::block_on(tx.send(line)).is_err() {
                break;
            }
        }
    });
    rx
}

async fn run(options: Options) -> Result<bool, String> {
    let mut builder = ClientSession::builder(options.url.as_str()).config(options.config);
    for (name, value) in &options.headers {
        builder = builder.header(name, value);
    }
    for protocol in options.protocols {
        builder = builder.protocol(protocol);
    }
    if let Some(path) = &options.ca {
        #[cfg(feature = "rustls")]
        {
            let tls = TlsConfig::new()
                .add_ca_pem_file(path)
                .map_err(|e| e.to_string())?;
            builder = builder.tls(tls);
        }
        #[cfg(not(feature = "rustls"))]
        return Err(format!("--ca {path}: built without the `rustls` feature"));
    }
    if let Some(url) = &options.proxy {
        builder = builder.proxy(Proxy::new(url).map_err(|e| e.to_string())?);
    }
    let session = builder.connect_stream().await.map_err(|e| e.to_string())?;
    if options.no_mask {
        session
            .handle
            .set_masking(false)
            .await
            .map_err(|e| e.to_string())?;
    }
    let handle = session.handle.clone();
    let mut incoming = session.incoming;
    let mut lines = stdin_lines();
    let mut input_open = true;
    let stdout = std::io::stdout();
    loop {
        futures::select! {
            line = lines.next() => match line {
                Some(line) => {
                    if let Err(error) = handle.send_text(line).await {
                        eprintln!("send failed: {error}");
                    }
                }
                None if input_open => {
                    input_open = false;
                    if let Err(error) = handle.close(CloseCode::NORMAL, "").await {
                        eprintln!("close failed: {error}");
                    }
                }
                None => {}
            },
            event = incoming.next() => match event {
                Some(Incoming::Text(text)) => {
                    let mut out = stdout.lock();
                    let _ = writeln!(out, "{text}");
                    let _ = out.flush();
                }
                Some(Incoming::Binary(bytes)) => {
                    let mut out = stdout.lock();
                    let _ = writeln!(out, "<binary {} bytes>", bytes.len());
                    let _ = out.flush();
                }
                Some(Incoming::Ping(_) | Incoming::Pong(_)) => {}
                Some(Incoming::Closed(info)) => {
                    if let Some(error) = &info.error {
                        eprintln!("error: {error}");
                    }
                    eprintln!("closed code={} clean={}", info.code, info.clean);
                    return Ok(info.clean);
                }
                None => {
                    eprintln!("closed code={} clean=false", CloseCode::ABNORMAL);
                    return Ok(false);
                }
            },
        }
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let outcome = actix_rt::System::new().block_on(run(options));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            eprintln!("closed code={} clean=false", CloseCode::ABNORMAL);
            ExitCode::FAILURE
        }
    }
}
