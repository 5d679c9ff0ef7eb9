//! Runs the Autobahn|TestSuite fuzzing server's client cases against this crate.
//!
//! ```text
//! cargo run --release --example autobahn_client -- --url ws://127.0.0.1:9001 --agent actix-ws-session [--cases 1,2,3]
//! ```
//!
//! The standard loop: `GET /getCaseCount`, then for every case connect to
//! `/runCase?case=N&agent=NAME` and echo every message back (text as text, binary as
//! binary) until the session closes, then `/updateReports?agent=NAME`. `scripts/autobahn.sh`
//! starts the server and checks the verdicts.
//!
//! Limits are the crate's defaults, except:
//! * the pinger is off: the cases script every frame the server expects, and an
//!   unsolicited Ping would be an extra frame in their record;
//! * `close_timeout` is 5 s instead of 10 s, which only shortens cases where the server
//!   deliberately never closes (the suite's own timeouts are shorter than either);
//! * permessage-deflate is offered (it is off by default), with `client_no_context_takeover`
//!   so that the server may ask for it: the 13.* cases accept only offers that allow their
//!   parameter combination.

use std::time::Duration;

use actix_ws_session::proto::DeflateConfig;
use actix_ws_session::{ClientSession, Config, Incoming, Send};
use futures::StreamExt;

struct Args {
    url: String,
    agent: String,
    cases: Option<Vec<u32>>,
}

fn parse_args() -> Result<Args, String> {
    let mut url = "ws://127.0.0.1:9001".to_string();
    let mut agent = "actix-ws-session".to_string();
    let mut cases = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => url = value()?,
            "--agent" => agent = value()?,
            "--cases" => {
                let list = value()?
                    .split(',')
                    .map(|n| n.trim().parse::<u32>().map_err(|e| format!("--cases: {e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                cases = Some(list);
            }
            "-h" | "--help" => {
                return Err("usage: autobahn_client --url URL --agent NAME [--cases N,M,..]".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        url: url.trim_end_matches('/').to_string(),
        agent,
        cases,
    })
}

fn config() -> Config {
    let compression = DeflateConfig::default().client_no_context_takeover(true);
    Config::default()
        .ping_interval(None)
        .close_timeout(Duration::from_secs(5))
        .compression(Some(compression))
}

/// Opens `url` and returns the first text message it sends.
async fn read_one_text(url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let mut session = ClientSession::builder(url)
        .config(config())
        .connect_stream()
        .await?;
    let mut text = None;
    while let Some(event) = session.incoming.next().await {
        match event {
            Incoming::Text(t) if text.is_none() => text = Some(t.to_string()),
            Incoming::Closed(_) => break,
            _ => {}
        }
    }
    text.ok_or_else(|| format!("{url} sent no text").into())
}

/// Runs one case: echo everything until the session closes.
async fn run_case(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let session = ClientSession::builder(url)
        .config(config())
        .connect_stream()
        .await?;
    let info = session
        .run(|handle, event| async move {
            let echo = match event {
                Incoming::Text(text) => Send::Text(text),
                Incoming::Binary(bytes) => Send::Binary(bytes),
                _ => return,
            };
            // An error here means the session is closing; the case is over.
            let _ = handle.send(echo).await;
        })
        .await;
    log::info!("case closed: {info:?}");
    Ok(())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = parse_args()?;
    let count: u32 = read_one_text(&format!("{}/getCaseCount", args.url))
        .await?
        .trim()
        .parse()?;
    let cases = args.cases.unwrap_or_else(|| (1..=count).collect());
    println!("running {} of {count} cases as {}", cases.len(), args.agent);
    for case in cases {
        let url = format!("{}/runCase?case={case}&agent={}", args.url, args.agent);
        if let Err(error) = run_case(&url).await {
            eprintln!("case {case}: {error}");
        }
    }
    let url = format!("{}/updateReports?agent={}", args.url, args.agent);
    let session = ClientSession::builder(url.as_str())
        .config(config())
        .connect_stream()
        .await?;
    session.run(|_, _| async {}).await;
    println!("reports updated");
    Ok(())
}
