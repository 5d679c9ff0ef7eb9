//! CLI, report format and the runtime-agnostic scenario cores shared by all
//! peer drivers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};

#[derive(Clone, Debug)]
pub struct Args {
    pub client: String,
    pub url: String,
    pub scenario: Scenario,
    pub size: usize,
    pub messages: u64,
    pub conns: usize,
    pub window: usize,
    pub duration: Duration,
    pub threads: usize,
    /// Concurrent handshakes while opening connections.
    pub connect_concurrency: usize,
    /// Spin before the runtime's thread parks (`spin::spinning_runtime`);
    /// zero: the runtime as the client's own examples build it.
    pub park_spin: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    EchoLatency,
    EchoThroughput,
    IdleConns,
    MaskKernel,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::EchoLatency => "echo-latency",
            Scenario::EchoThroughput => "echo-throughput",
            Scenario::IdleConns => "idle-conns",
            Scenario::MaskKernel => "mask-kernel",
        }
    }
}

pub const USAGE: &str = "loadgen_peer --client tokio-tungstenite|tokio-websockets|awc-raw|fastwebsockets \
--url ws://127.0.0.1:PORT/ --scenario echo-latency|echo-throughput|idle-conns|mask-kernel \
--size BYTES --messages N --conns C --window W --duration-s S [--threads T] [--connect-concurrency K] [--park-spin-us US]";

pub fn die(msg: &str) -> ! {
    eprintln!("loadgen_peer: {msg}\nusage: {USAGE}");
    std::process::exit(2)
}

pub fn parse_args() -> Args {
    let mut a = Args {
        client: String::new(),
        url: "ws://127.0.0.1:9001/".into(),
        scenario: Scenario::EchoLatency,
        size: 16,
        messages: 10_000,
        conns: 1,
        window: 1,
        duration: Duration::from_secs(3),
        threads: 1,
        connect_concurrency: 256,
        park_spin: Duration::ZERO,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "-h" || k == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = it.next().unwrap_or_else(|| die(&format!("{k} needs a value")));
        let num = |v: &str| -> u64 { v.parse().unwrap_or_else(|_| die(&format!("bad value for {k}: {v}"))) };
        match k.as_str() {
            "--client" => a.client = v,
            "--url" => a.url = v,
            "--scenario" => {
                a.scenario = match v.as_str() {
                    "echo-latency" => Scenario::EchoLatency,
                    "echo-throughput" => Scenario::EchoThroughput,
                    "idle-conns" => Scenario::IdleConns,
                    "mask-kernel" => Scenario::MaskKernel,
                    o => die(&format!("unknown scenario {o}")),
                }
            }
            "--size" => a.size = num(&v) as usize,
            "--messages" => a.messages = num(&v).max(1),
            "--conns" => a.conns = (num(&v) as usize).max(1),
            "--window" => a.window = (num(&v) as usize).max(1),
            "--duration-s" => {
                let s: f64 = v.parse().unwrap_or_else(|_| die("bad --duration-s"));
                a.duration = Duration::from_secs_f64(s.max(0.0));
            }
            "--threads" => a.threads = (num(&v) as usize).max(1),
            "--connect-concurrency" => a.connect_concurrency = (num(&v) as usize).max(1),
            "--park-spin-us" => a.park_spin = Duration::from_micros(num(&v)),
            o => die(&format!("unknown argument {o}")),
        }
    }
    if a.client.is_empty() {
        die("--client is required");
    }
    if !a.park_spin.is_zero() && a.threads > 1 && a.client != "awc-raw" {
        die("--park-spin-us builds current-thread runtimes: use it with --threads 1");
    }
    a
}

/// One JSON line; `None` prints as `null`.
#[derive(Default, Debug, Clone)]
pub struct Report {
    pub msgs_per_s: Option<f64>,
    pub mb_per_s: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub rss_kib_per_conn: Option<f64>,
    pub conns_per_s: Option<f64>,
    pub gb_per_s: Option<f64>,
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{:.3}", x),
        _ => "null".into(),
    }
}

pub fn print_report(a: &Args, r: &Report) {
    let conns = match a.scenario {
        Scenario::MaskKernel => "null".to_string(),
        Scenario::EchoLatency => "1".to_string(),
        _ => a.conns.to_string(),
    };
    println!(
        "{{\"client\":\"{}\",\"scenario\":\"{}\",\"size\":{},\"conns\":{},\"msgs_per_s\":{},\"mb_per_s\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"rss_kib_per_conn\":{},\"conns_per_s\":{},\"gb_per_s\":{}}}",
        a.client,
        a.scenario.name(),
        a.size,
        conns,
        num(r.msgs_per_s),
        num(r.mb_per_s),
        num(r.p50_us),
        num(r.p99_us),
        num(r.p999_us),
        num(r.rss_kib_per_conn),
        num(r.conns_per_s),
        num(r.gb_per_s)
    );
}

pub fn raise_nofile() {
    // SAFETY: plain libc calls on a stack-allocated struct.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// VmRSS of this process in KiB.
pub fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Deterministic non-trivial payload.
pub fn payload(size: usize) -> Bytes {
    let mut v = Vec::with_capacity(size);
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(x as u8);
    }
    Bytes::from(v)
}

/// Classification of an inbound item, supplied by each driver.
pub enum Inbound {
    /// A complete data message with this many payload bytes.
    Data(usize),
    /// The peer closed (or the stream ended).
    Closed,
    /// Anything else (ping/pong/partial frame): ignored.
    Other,
}

/// Round-trip samples in nanoseconds -> report.
pub fn latency_report(mut rtts: Vec<u64>, size: usize, elapsed: Duration) -> Report {
    let n = rtts.len();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut r = Report {
        msgs_per_s: Some(n as f64 / secs),
        mb_per_s: Some((n * size) as f64 / secs / 1e6),
        ..Default::default()
    };
    if n > 0 {
        rtts.sort_unstable();
        let pct = |p: f64| -> f64 {
            let idx = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            rtts[idx] as f64 / 1e3
        };
        r.p50_us = Some(pct(0.50));
        r.p99_us = Some(pct(0.99));
        r.p999_us = Some(pct(0.999));
    }
    r
}

/// `echo-latency` on one established connection: one message in flight.
pub async fn latency_loop<S, In, Out, E1, E2>(
    ws: &mut S,
    msg: impl Fn() -> Out,
    classify: impl Fn(&In) -> Inbound,
    size: usize,
    n: u64,
    dur: Duration,
) -> Report
where
    S: Stream<Item = Result<In, E1>> + Sink<Out, Error = E2> + Unpin,
    E1: std::fmt::Debug,
    E2: std::fmt::Debug,
{
    let mut rtts = Vec::with_capacity(n.min(1 << 22) as usize);
    let start = Instant::now();
    let deadline = start + dur;
    'outer: for _ in 0..n {
        if Instant::now() >= deadline {
            break;
        }
        let t0 = Instant::now();
        if let Err(e) = ws.send(msg()).await {
            eprintln!("send error: {e:?}");
            break;
        }
        loop {
            match tokio::time::timeout_at(deadline.into(), ws.next()).await {
                Err(_) => break 'outer,
                Ok(Some(Ok(item))) => match classify(&item) {
                    Inbound::Data(_) => break,
                    Inbound::Closed => break 'outer,
                    Inbound::Other => continue,
                },
                Ok(Some(Err(e))) => {
                    eprintln!("recv error: {e:?}");
                    break 'outer;
                }
                Ok(None) => break 'outer,
            }
        }
        rtts.push(t0.elapsed().as_nanos() as u64);
    }
    latency_report(rtts, size, start.elapsed())
}

/// Per-connection result of the windowed echo loop.
#[derive(Default, Clone, Copy, Debug)]
pub struct ConnResult {
    pub msgs: u64,
    pub bytes: u64,
}

/// `echo-throughput` on one established connection: keep `window` messages in
/// flight until `n` are echoed or `deadline` passes. Reader and writer run
/// concurrently on the split halves (no deadlock with large messages).
pub async fn window_loop<S, In, Out, E1, E2>(
    ws: S,
    msg: impl Fn() -> Out,
    classify: impl Fn(&In) -> Inbound,
    window: usize,
    n: u64,
    deadline: Instant,
) -> ConnResult
where
    S: Stream<Item = Result<In, E1>> + Sink<Out, Error = E2> + Unpin,
    E1: std::fmt::Debug,
    E2: std::fmt::Debug,
{
    let (mut tx, mut rx) = ws.split();
    let credits = tokio::sync::Semaphore::new(window);
    let deadline_t: tokio::time::Instant = deadline.into();
    let writer = async {
        let mut sent = 0u64;
        while sent < n {
            // Batch: take every credit available, feed, then flush once.
            let permit = match tokio::time::timeout_at(deadline_t, credits.acquire()).await {
                Ok(Ok(p)) => p,
                _ => break,
            };
            permit.forget();
            let mut batch = 1u64;
            while sent + batch < n {
                match credits.try_acquire() {
                    Ok(p) => {
                        p.forget();
                        batch += 1;
                    }
                    Err(_) => break,
                }
            }
            for _ in 0..batch {
                if tx.feed(msg()).await.is_err() {
                    return;
                }
            }
            sent += batch;
            match tokio::time::timeout_at(deadline_t, tx.flush()).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
    };
    let reader = async {
        let mut res = ConnResult::default();
        while res.msgs < n {
            match tokio::time::timeout_at(deadline_t, rx.next()).await {
                Ok(Some(Ok(item))) => match classify(&item) {
                    Inbound::Data(len) => {
                        res.msgs += 1;
                        res.bytes += len as u64;
                        credits.add_permits(1);
                    }
                    Inbound::Closed => break,
                    Inbound::Other => {}
                },
                Ok(Some(Err(e))) => {
                    eprintln!("recv error: {e:?}");
                    break;
                }
                _ => break,
            }
        }
        // Unblock the writer if it is waiting on credits.
        credits.close();
        res
    };
    let ((), res) = futures_util::future::join(writer, reader).await;
    res
}

pub fn throughput_report(total: ConnResult, elapsed: Duration) -> Report {
    let secs = elapsed.as_secs_f64().max(1e-9);
    Report {
        msgs_per_s: Some(total.msgs as f64 / secs),
        mb_per_s: Some(total.bytes as f64 / secs / 1e6),
        ..Default::default()
    }
}

pub fn idle_report(conns: usize, opened: usize, rss_before: u64, rss_after: u64, open_time: Duration) -> Report {
    if opened < conns {
        eprintln!("warning: only {opened}/{conns} connections opened");
    }
    let c = opened.max(1) as f64;
    Report {
        rss_kib_per_conn: Some(rss_after.saturating_sub(rss_before) as f64 / c),
        conns_per_s: Some(opened as f64 / open_time.as_secs_f64().max(1e-9)),
        ..Default::default()
    }
}

/// Masking kernel throughput over a 1 MiB buffer, repeated for `dur`.
pub fn mask_kernel(f: impl Fn(&mut [u8], [u8; 4]), dur: Duration) -> Report {
    let mut buf = payload(1 << 20).to_vec();
    let mask = [0x12, 0x34, 0x56, 0x78];
    // Warm-up.
    for _ in 0..8 {
        f(&mut buf, mask);
    }
    let start = Instant::now();
    let mut iters = 0u64;
    while iters == 0 || start.elapsed() < dur {
        for _ in 0..16 {
            f(std::hint::black_box(&mut buf), mask);
        }
        iters += 16;
    }
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(&buf);
    Report {
        gb_per_s: Some((iters as f64 * (1u64 << 20) as f64) / secs / 1e9),
        ..Default::default()
    }
}
