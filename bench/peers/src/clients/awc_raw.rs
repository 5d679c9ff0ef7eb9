//! awc-raw driver: awc 3 `Client::ws(url).connect()` and the returned
//! `Framed<BoxedSocket, actix_http::ws::Codec>` used directly, on
//! `actix_rt::System`s (one per `--threads`, connections spread round-robin).
//! awc's connector pool limit is lifted (`limit(0)`) and the codec's frame
//! limit raised to 64 MiB. actix-http keeps its masking routine private, so
//! `mask-kernel` reports nulls.

use std::time::{Duration, Instant};

use actix_codec::Framed;
use actix_http::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::common::{self, Args, ConnResult, Inbound, Report, Scenario};

type Ws = Framed<BoxedSocket, Codec>;

fn client() -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(0).timeout(Duration::from_secs(10)))
        .timeout(Duration::from_secs(30))
        .finish()
}

async fn connect(client: &awc::Client, url: &str) -> Result<Ws, String> {
    client
        .ws(url)
        .max_frame_size(64 << 20)
        .connect()
        .await
        .map(|(_resp, ws)| ws)
        .map_err(|e| format!("awc connect: {e}"))
}

fn msg(p: &Bytes) -> Message {
    Message::Binary(p.clone())
}

fn classify(f: &Frame) -> Inbound {
    match f {
        Frame::Binary(b) | Frame::Text(b) => Inbound::Data(b.len()),
        Frame::Close(_) => Inbound::Closed,
        _ => Inbound::Other,
    }
}

fn system<F: std::future::Future>(park_spin: Duration, fut: F) -> F::Output {
    if park_spin.is_zero() {
        actix_rt::System::new().block_on(fut)
    } else {
        actix_rt::System::with_tokio_rt(move || {
            crate::spin::spinning_runtime(park_spin).expect("tokio runtime")
        })
        .block_on(fut)
    }
}

async fn open_all(url: &str, n: usize, concurrency: usize) -> Vec<Result<Ws, String>> {
    let c = client();
    futures_util::stream::iter(0..n)
        .map(|_| connect(&c, url))
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// Windowed echo on `n_conns` connections inside the current System.
async fn throughput_share(a: Args, n_conns: usize, start_gate: std::sync::Arc<std::sync::Barrier>) -> (ConnResult, Duration) {
    let conns = open_all(&a.url, n_conns, a.connect_concurrency).await;
    let p = common::payload(a.size);
    // All threads start measuring together.
    start_gate.wait();
    let start = Instant::now();
    let deadline = start + a.duration;
    let mut tasks = Vec::with_capacity(conns.len());
    for c in conns {
        let ws = c.unwrap_or_else(|e| common::die(&e));
        let p = p.clone();
        let (w, n) = (a.window, a.messages);
        tasks.push(actix_rt::spawn(async move {
            common::window_loop(ws, move || msg(&p), classify, w, n, deadline).await
        }));
    }
    let mut total = ConnResult::default();
    for t in tasks {
        let r = t.await.expect("conn task");
        total.msgs += r.msgs;
        total.bytes += r.bytes;
    }
    (total, start.elapsed())
}

pub fn run(a: &Args) -> Report {
    match a.scenario {
        Scenario::EchoLatency => {
            let a = a.clone();
            system(a.park_spin, async move {
                let mut ws = connect(&client(), &a.url).await.unwrap_or_else(|e| common::die(&e));
                let p = common::payload(a.size);
                common::latency_loop(&mut ws, || msg(&p), classify, a.size, a.messages, a.duration).await
            })
        }
        Scenario::EchoThroughput => {
            let threads = a.threads.min(a.conns).max(1);
            let gate = std::sync::Arc::new(std::sync::Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let share = a.conns / threads + usize::from(t < a.conns % threads);
                    let a = a.clone();
                    let gate = gate.clone();
                    std::thread::spawn(move || system(a.park_spin, throughput_share(a, share, gate)))
                })
                .collect();
            let mut total = ConnResult::default();
            let mut elapsed = Duration::ZERO;
            for h in handles {
                let (r, e) = h.join().expect("awc thread");
                total.msgs += r.msgs;
                total.bytes += r.bytes;
                elapsed = elapsed.max(e);
            }
            common::throughput_report(total, elapsed)
        }
        Scenario::IdleConns => {
            let a = a.clone();
            system(a.park_spin, async move {
                let before = common::vm_rss_kib();
                let start = Instant::now();
                let conns: Vec<Ws> = open_all(&a.url, a.conns, a.connect_concurrency)
                    .await
                    .into_iter()
                    .filter_map(|r| r.map_err(|e| eprintln!("{e}")).ok())
                    .collect();
                let open_time = start.elapsed();
                let after = common::vm_rss_kib();
                actix_rt::time::sleep(a.duration).await;
                let opened = conns.len();
                drop(conns);
                common::idle_report(a.conns, opened, before, after, open_time)
            })
        }
        Scenario::MaskKernel => Report::default(),
    }
}
