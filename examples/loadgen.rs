//! Load generator on this crate's public API, for side-by-side runs with other clients
//! (`scripts/bench.sh` drives it with the same scenarios as `bench/peers`).
//!
//! ```text
//! cargo run --release --example loadgen -- --url ws://127.0.0.1:PORT/ --scenario NAME \
//!     --size BYTES --messages N --conns C --window W --duration-s S [--threads T] \
//!     [--fragment-size BYTES] [--idle-echoes N] [--park-spin-us US]
//! ```
//!
//! Prints exactly one JSON line. Scenarios: `echo-latency` (one session, one message in
//! flight: round-trip percentiles), `echo-throughput` (C sessions, W messages in flight
//! each), `idle-conns` (C open sessions, pinger off: RSS per session and connects/s),
//! `mask-kernel` (no network: `proto::apply_mask` on 1 MiB vs a memcpy of it).
//! Sessions are spread over `--threads` arbiters (default 1), each session's actors and
//! its driving task on one arbiter. `--fragment-size` sets `Config::fragment_size`
//! (default: the crate's default). `--idle-echoes N` makes every `idle-conns` session
//! echo N messages of `--size` bytes, one at a time, before the hold (default 0), to
//! measure what a session keeps after use. `--park-spin-us US` runs every arbiter on
//! `runtime::spinning_runtime` with a spin of US microseconds (default 0: actix's own
//! runtime, which does not spin).

use std::time::{Duration, Instant};

use actix::Arbiter;
use actix_ws_session::{ClientSession, Config, Incoming, Send, Session};
use bytes::Bytes;
use futures::channel::oneshot;
use futures::{FutureExt, SinkExt, StreamExt};

#[derive(Debug, Clone)]
struct Args {
    url: String,
    scenario: String,
    size: usize,
    messages: u64,
    conns: usize,
    window: usize,
    duration: Duration,
    threads: usize,
    fragment_size: usize,
    idle_echoes: u64,
    park_spin: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: "ws://127.0.0.1:9001/".into(),
        scenario: "echo-latency".into(),
        size: 16,
        messages: 10_000,
        conns: 1,
        window: 1,
        duration: Duration::from_secs(3),
        threads: 1,
        fragment_size: Config::default().fragment_size,
        idle_echoes: 0,
        park_spin: Duration::ZERO,
    };
    let mut it = std::env::args().skip(1);
    while let Some(key) = it.next() {
        let value = it.next().ok_or(format!("{key} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{key} {v}: {e}"));
        match key.as_str() {
            "--url" => a.url = value,
            "--scenario" => a.scenario = value,
            "--size" => a.size = number(&value)? as usize,
            "--messages" => a.messages = number(&value)?.max(1),
            "--conns" => a.conns = (number(&value)? as usize).max(1),
            "--window" => a.window = (number(&value)? as usize).max(1),
            "--duration-s" => {
                let secs: f64 = value.parse().map_err(|e| format!("--duration-s: {e}"))?;
                a.duration = Duration::from_secs_f64(secs.max(0.0));
            }
            "--threads" => a.threads = (number(&value)? as usize).max(1),
            "--fragment-size" => a.fragment_size = number(&value)? as usize,
            "--idle-echoes" => a.idle_echoes = number(&value)?,
            "--park-spin-us" => a.park_spin = Duration::from_micros(number(&value)?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

#[derive(Default)]
struct Report {
    msgs_per_s: Option<f64>,
    mb_per_s: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
    rss_kib_per_conn: Option<f64>,
    conns_per_s: Option<f64>,
    gb_per_s: Option<f64>,
}

fn json_number(value: Option<f64>) -> String {
    match value {
        Some(x) if x.is_finite() => format!("{x:.3}"),
        _ => "null".into(),
    }
}

fn print_report(a: &Args, r: &Report) {
    let conns = match a.scenario.as_str() {
        "mask-kernel" => "null".to_string(),
        "echo-latency" => "1".to_string(),
        _ => a.conns.to_string(),
    };
    println!(
        "{{\"client\":\"actix-ws-session\",\"scenario\":\"{}\",\"size\":{},\"conns\":{},\"msgs_per_s\":{},\"mb_per_s\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"rss_kib_per_conn\":{},\"conns_per_s\":{},\"gb_per_s\":{}}}",
        a.scenario,
        a.size,
        conns,
        json_number(r.msgs_per_s),
        json_number(r.mb_per_s),
        json_number(r.p50_us),
        json_number(r.p99_us),
        json_number(r.p999_us),
        json_number(r.rss_kib_per_conn),
        json_number(r.conns_per_s),
        json_number(r.gb_per_s)
    );
}

fn payload(size: usize) -> Bytes {
    let mut x: u32 = 0x9e37_79b9;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn open(url: &str, config: Config) -> Result<Session, String> {
    ClientSession::builder(url)
        .config(config)
        .connect_stream()
        .await
        .map_err(|e| format!("connect {url}: {e}"))
}

fn bench_config(a: &Args) -> Config {
    Config::default()
        .ping_interval(None)
        .max_message_size(64 << 20)
        .fragment_size(a.fragment_size)
}

/// Runs `job` on `arbiter` and returns its output.
async fn on<T, F>(
    arbiter: &actix::ArbiterHandle,
    job: impl FnOnce() -> F + std::marker::Send + 'static,
) -> T
where
    T: std::marker::Send + 'static,
    F: std::future::Future<Output = T> + 'static,
{
    let (tx, rx) = oneshot::channel();
    arbiter.spawn_fn(move || {
        actix_rt::spawn(async move {
            let _ = tx.send(job().await);
        });
    });
    rx.await.expect("arbiter stopped")
}

async fn echo_latency(a: &Args) -> Result<Report, String> {
    let mut session = open(&a.url, bench_config(a)).await?;
    let data = payload(a.size);
    let addr = session.handle.addr().clone();
    let mut rtts = Vec::with_capacity(a.messages.min(1 << 22) as usize);
    let start = Instant::now();
    let deadline = start + a.duration;
    'outer: for _ in 0..a.messages {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        addr.do_send(Send::Binary(data.clone()));
        loop {
            match session.incoming.next().await {
                Some(Incoming::Binary(_) | Incoming::Text(_)) => break,
                Some(Incoming::Closed(info)) => return Err(format!("closed: {info:?}")),
                Some(_) => {}
                None => break 'outer,
            }
        }
        rtts.push(sent.elapsed().as_nanos() as u64);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = session.handle.close(1000, "").await;
    let n = rtts.len();
    rtts.sort_unstable();
    let pct = |p: f64| rtts[((p * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1e3;
    Ok(Report {
        msgs_per_s: Some(n as f64 / elapsed),
        mb_per_s: Some((n * a.size) as f64 / elapsed / 1e6),
        p50_us: (n > 0).then(|| pct(0.5)),
        p99_us: (n > 0).then(|| pct(0.99)),
        p999_us: (n > 0).then(|| pct(0.999)),
        ..Report::default()
    })
}

/// One session keeping `window` messages in flight until `n` are echoed or the deadline.
///
/// Every echo is answered with a new message fed to the session's [`SendSink`]; what was
/// fed is handed to the session whenever the next echo is not there yet (one mailbox
/// message per batch), without waiting for it to be written.
///
/// [`SendSink`]: actix_ws_session::SendSink
async fn window_echo(
    mut session: Session,
    data: Bytes,
    window: usize,
    n: u64,
    deadline: Instant,
) -> (u64, u64) {
    let mut sink = session.handle.sink();
    let mut sent = 0u64;
    let (mut received, mut bytes) = (0u64, 0u64);
    while sent < n && sent < window as u64 {
        if sink.feed(Send::Binary(data.clone())).await.is_err() {
            return (0, 0);
        }
        sent += 1;
    }
    let deadline = tokio::time::Instant::from_std(deadline);
    while received < n {
        let next = tokio::time::timeout_at(deadline, session.incoming.next());
        let mut next = std::pin::pin!(next);
        let event = match futures::poll!(next.as_mut()) {
            std::task::Poll::Ready(event) => event,
            std::task::Poll::Pending => {
                // Nothing more to answer for now: hand over what was fed.
                if let Some(Err(_)) = sink.flush().now_or_never() {
                    break;
                }
                next.await
            }
        };
        match event {
            Ok(Some(Incoming::Binary(b))) => {
                received += 1;
                bytes += b.len() as u64;
                if sent < n {
                    if sink.feed(Send::Binary(data.clone())).await.is_err() {
                        break;
                    }
                    sent += 1;
                }
            }
            Ok(Some(Incoming::Closed(_)) | None) | Err(_) => break,
            Ok(Some(_)) => {}
        }
    }
    drop(sink);
    let _ = session.handle.close(1000, "").await;
    (received, bytes)
}

async fn echo_throughput(a: &Args, arbiters: &[actix::ArbiterHandle]) -> Result<Report, String> {
    let data = payload(a.size);
    let mut sessions = Vec::with_capacity(a.conns);
    for i in 0..a.conns {
        let url = a.url.clone();
        let config = bench_config(a);
        let arbiter = &arbiters[i % arbiters.len()];
        sessions.push(
            on(arbiter, move || async move {
                open(&url, config)
                    .await
                    .map(|s| (s.handle, s.incoming, s.handshake))
            })
            .await?,
        );
    }
    let start = Instant::now();
    let deadline = start + a.duration;
    let mut runs = Vec::with_capacity(a.conns);
    for (i, (handle, incoming, handshake)) in sessions.into_iter().enumerate() {
        let session = Session {
            handle,
            incoming,
            handshake,
        };
        let (data, window, n) = (data.clone(), a.window, a.messages);
        let arbiter = arbiters[i % arbiters.len()].clone();
        runs.push(async move {
            on(&arbiter, move || {
                window_echo(session, data, window, n, deadline)
            })
            .await
        });
    }
    let results = futures::future::join_all(runs).await;
    let elapsed = start.elapsed().as_secs_f64();
    let (msgs, bytes) = results
        .iter()
        .fold((0, 0), |(m, b), (rm, rb)| (m + rm, b + rb));
    Ok(Report {
        msgs_per_s: Some(msgs as f64 / elapsed),
        mb_per_s: Some(bytes as f64 / elapsed / 1e6),
        ..Report::default()
    })
}

async fn idle_conns(a: &Args) -> Result<Report, String> {
    let before = vm_rss_kib();
    let start = Instant::now();
    let mut sessions = Vec::with_capacity(a.conns);
    let mut pending = futures::stream::iter((0..a.conns).map(|_| open(&a.url, bench_config(a))))
        .buffer_unordered(256);
    while let Some(session) = pending.next().await {
        sessions.push(session?);
    }
    let open_time = start.elapsed().as_secs_f64();
    let data = payload(a.size);
    for session in &mut sessions {
        for _ in 0..a.idle_echoes {
            session.handle.addr().do_send(Send::Binary(data.clone()));
            loop {
                match session.incoming.next().await {
                    Some(Incoming::Binary(_) | Incoming::Text(_)) => break,
                    Some(Incoming::Closed(info)) => return Err(format!("closed: {info:?}")),
                    Some(_) => {}
                    None => return Err("session ended before its echo".into()),
                }
            }
        }
    }
    actix_rt::time::sleep(a.duration).await;
    let after = vm_rss_kib();
    let per_conn = after.saturating_sub(before) as f64 / sessions.len().max(1) as f64;
    Ok(Report {
        rss_kib_per_conn: Some(per_conn),
        conns_per_s: Some(sessions.len() as f64 / open_time.max(1e-9)),
        ..Report::default()
    })
}

fn mask_kernel(a: &Args) -> Report {
    let mut buf = payload(1 << 20).to_vec();
    let source = buf.clone();
    let time = |f: &mut dyn FnMut()| {
        for _ in 0..8 {
            f();
        }
        let start = Instant::now();
        let mut iterations = 0u64;
        while iterations == 0 || start.elapsed() < a.duration / 2 {
            for _ in 0..16 {
                f();
            }
            iterations += 16;
        }
        iterations as f64 * (1u64 << 20) as f64 / start.elapsed().as_secs_f64() / 1e9
    };
    let mask = time(&mut || {
        actix_ws_session::proto::apply_mask(
            std::hint::black_box(&mut buf),
            [0x12, 0x34, 0x56, 0x78],
        )
    });
    let mut copy = vec![0u8; 1 << 20];
    let memcpy = time(&mut || {
        std::hint::black_box(&mut copy).copy_from_slice(std::hint::black_box(&source))
    });
    eprintln!(
        "mask {mask:.2} GB/s, memcpy {memcpy:.2} GB/s, ratio {:.2}",
        mask / memcpy
    );
    Report {
        gb_per_s: Some(mask),
        ..Report::default()
    }
}

/// The runtime for an arbiter that spins for `spin` before it parks (see `--park-spin-us`).
fn runtime(spin: Duration) -> tokio::runtime::Runtime {
    actix_ws_session::runtime::spinning_runtime(spin).unwrap_or_else(|e| {
        eprintln!("loadgen: cannot build a tokio runtime: {e}");
        std::process::exit(1);
    })
}

/// A new arbiter: actix's own runtime, or a spinning one if `spin` is not zero.
fn new_arbiter(spin: Duration) -> Arbiter {
    if spin.is_zero() {
        Arbiter::new()
    } else {
        Arbiter::with_tokio_rt(move || runtime(spin))
    }
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let spin = a.park_spin;
    let system = if spin.is_zero() {
        actix_rt::System::new()
    } else {
        actix_rt::System::with_tokio_rt(move || runtime(spin))
    };
    // The scenario runs as a task on the arbiter, like application code in an actix
    // program, rather than as the runtime's top-level future: a wake-up between the
    // session's actors and the scenario then stays inside one scheduler tick (as the
    // top-level future, every round trip cost an extra non-blocking epoll_wait).
    let scenario = a.clone();
    let result = system.block_on(async move {
        actix_rt::spawn(async move {
            let a = scenario;
            let arbiters: Vec<actix::ArbiterHandle> = std::iter::once(Arbiter::current())
                .chain((1..a.threads).map(|_| new_arbiter(a.park_spin).handle()))
                .collect();
            match a.scenario.as_str() {
                "echo-latency" => echo_latency(&a).await,
                "echo-throughput" => echo_throughput(&a, &arbiters).await,
                "idle-conns" => idle_conns(&a).await,
                "mask-kernel" => Ok(mask_kernel(&a)),
                other => Err(format!("unknown scenario {other}")),
            }
        })
        .await
        .unwrap_or_else(|e| Err(format!("scenario task failed: {e}")))
    });
    match result {
        Ok(report) => print_report(&a, &report),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}
