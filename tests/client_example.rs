//! Verifies the `client` example end to end as a user runs it: lines from stdin go out as
//! text, echoes come back on stdout, end of input closes cleanly (exit status 0), and
//! `--no-mask` really sends unmasked frames.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{op, EchoServer, ScriptedServer};

/// Builds the example (a no-op when it is fresh) and returns its path, next to this test's
/// own binary (`target/<profile>/examples/client`), so it works on a fresh clone and with
/// any `CARGO_TARGET_DIR`.
fn client_binary() -> PathBuf {
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

/// Runs the example with `args`, feeding `stdin` then closing it; kills it after 30 s.
fn run_client(args: &[String], stdin: &[u8]) -> Output {
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "client example still running after 30 s; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[actix_web::test]
async fn client_echoes_stdin_and_closes_cleanly() {
    // Build first, outside the timing-sensitive part.
    actix_web::rt::task::spawn_blocking(client_binary)
        .await
        .unwrap();
    let server = EchoServer::start();
    let args = vec![server.url("/echo")];
    let output = common::within_for(
        Duration::from_secs(40),
        "the client example",
        actix_web::rt::task::spawn_blocking(move || run_client(&args, b"hi\n")),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hi\n", "{stderr}");
    assert_eq!(
        last_line(&output.stderr),
        "closed code=1000 clean=true",
        "{stderr}"
    );
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    server.stop().await;
}

#[actix_web::test]
async fn client_no_mask_sends_unmasked_frames() {
    actix_web::rt::task::spawn_blocking(client_binary)
        .await
        .unwrap();
    let server = ScriptedServer::start(|peer| {
        let text = peer.read_frame();
        peer.send(op::TEXT, &text.payload); // echo it
        let close = peer.finish_close_handshake();
        (text, close)
    });
    let args = vec!["--no-mask".to_string(), server.url()];
    let output = common::within_for(
        Duration::from_secs(40),
        "the client example",
        actix_web::rt::task::spawn_blocking(move || run_client(&args, b"plain text\n")),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let (text, close) = server.join().await;
    assert_eq!(text.opcode, op::TEXT);
    assert_eq!(text.mask, None, "--no-mask sent a masked frame");
    assert_eq!(text.wire_payload, b"plain text");
    assert_eq!(close.mask, None, "--no-mask sent a masked Close");
    assert_eq!(close.close().map(|(code, _)| code), Some(1000));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "plain text\n",
        "{stderr}"
    );
    assert_eq!(
        last_line(&output.stderr),
        "closed code=1000 clean=true",
        "{stderr}"
    );
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
}
