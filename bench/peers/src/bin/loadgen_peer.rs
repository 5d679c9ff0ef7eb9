//! Load generator for the peer WebSocket clients. Same CLI and one-line JSON
//! output as the root crate's `examples/loadgen.rs`, plus `--client`.

use ws_bench_peers::clients::{awc_raw, fastwebsockets_mask, tokio_tungstenite, tokio_websockets};
use ws_bench_peers::common::{self, Scenario};

fn main() {
    let a = common::parse_args();
    if a.scenario == Scenario::IdleConns {
        common::raise_nofile();
    }
    let report = match a.client.as_str() {
        "tokio-tungstenite" => tokio_tungstenite::run(&a),
        "tokio-websockets" => tokio_websockets::run(&a),
        "awc-raw" => awc_raw::run(&a),
        "fastwebsockets" => fastwebsockets_mask::run(&a),
        other => common::die(&format!("unknown --client {other}")),
    };
    common::print_report(&a, &report);
}
