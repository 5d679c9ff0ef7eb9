//! Scenario orchestration for clients that run on a plain tokio runtime
//! (tokio-tungstenite, tokio-websockets). One task per connection.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::{Sink, Stream, StreamExt};

use crate::common::{self, Args, ConnResult, Inbound, Report, Scenario};

pub trait TokioClient: Send + Sync + 'static {
    type In: Send + 'static;
    type Out: Send + 'static;
    type E1: Debug + Send + 'static;
    type E2: Debug + Send + 'static;
    type Ws: Stream<Item = Result<Self::In, Self::E1>> + Sink<Self::Out, Error = Self::E2> + Unpin + Send + 'static;

    fn connect(&self, url: &str) -> impl Future<Output = Result<Self::Ws, String>> + Send;
    fn msg(payload: &Bytes) -> Self::Out;
    fn classify(item: &Self::In) -> Inbound;
}

pub fn runtime(threads: usize, park_spin: std::time::Duration) -> tokio::runtime::Runtime {
    if !park_spin.is_zero() {
        // parse_args allows a spin only with one thread.
        crate::spin::spinning_runtime(park_spin)
    } else if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
    .expect("tokio runtime")
}

pub fn run<C: TokioClient>(client: C, a: &Args) -> Report {
    let client = Arc::new(client);
    let rt = runtime(a.threads, a.park_spin);
    let a = a.clone();
    rt.block_on(async move {
        match a.scenario {
            Scenario::EchoLatency => {
                let mut ws = client.connect(&a.url).await.unwrap_or_else(|e| common::die(&e));
                let p = common::payload(a.size);
                common::latency_loop(&mut ws, || C::msg(&p), C::classify, a.size, a.messages, a.duration).await
            }
            Scenario::EchoThroughput => {
                let conns = futures_util::stream::iter(0..a.conns)
                    .map(|_| client.connect(&a.url))
                    .buffer_unordered(a.connect_concurrency)
                    .collect::<Vec<_>>()
                    .await;
                let p = common::payload(a.size);
                let start = Instant::now();
                let deadline = start + a.duration;
                let mut tasks = Vec::with_capacity(conns.len());
                for c in conns {
                    let ws = c.unwrap_or_else(|e| common::die(&e));
                    let p = p.clone();
                    let (w, n) = (a.window, a.messages);
                    tasks.push(tokio::spawn(async move {
                        common::window_loop(ws, move || C::msg(&p), C::classify, w, n, deadline).await
                    }));
                }
                let mut total = ConnResult::default();
                for t in tasks {
                    let r = t.await.expect("conn task");
                    total.msgs += r.msgs;
                    total.bytes += r.bytes;
                }
                common::throughput_report(total, start.elapsed())
            }
            Scenario::IdleConns => {
                let before = common::vm_rss_kib();
                let start = Instant::now();
                let conns: Vec<C::Ws> = futures_util::stream::iter(0..a.conns)
                    .map(|_| client.connect(&a.url))
                    .buffer_unordered(a.connect_concurrency)
                    .filter_map(|r| async move {
                        r.map_err(|e| eprintln!("connect: {e}")).ok()
                    })
                    .collect()
                    .await;
                let open_time = start.elapsed();
                let after = common::vm_rss_kib();
                tokio::time::sleep(a.duration).await;
                let opened = conns.len();
                drop(conns);
                common::idle_report(a.conns, opened, before, after, open_time)
            }
            Scenario::MaskKernel => Report::default(),
        }
    })
}
