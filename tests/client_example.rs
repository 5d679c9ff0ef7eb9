//! Verifies the `client` example end to end as a user runs it: lines from stdin go out as
//! text, echoes come back on stdout, end of input closes cleanly (exit status 0), and
//! `--no-mask` really sends unmasked frames.

mod common;

use std::time::Duration;

use common::{build_client_example, op, run_client, EchoServer, ScriptedServer};

/// How long the example may run before it is killed.
const KILL_AFTER: Duration = Duration::from_secs(30);

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
    build_client_example().await;
    let server = EchoServer::start();
    let args = vec![server.url("/echo")];
    let output = run_client(args, b"hi\n", KILL_AFTER).await;
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
    build_client_example().await;
    let server = ScriptedServer::start(|peer| {
        let text = peer.read_frame();
        peer.send(op::TEXT, &text.payload); // echo it
        let close = peer.finish_close_handshake();
        (text, close)
    });
    let args = vec!["--no-mask".to_string(), server.url()];
    let output = run_client(args, b"plain text\n", KILL_AFTER).await;
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
