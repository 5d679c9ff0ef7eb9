//! The README's main job: an embedded actix-web echo server on 127.0.0.1 and a client
//! session talking to it, printing every step.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::AggregatedMessage;
use actix_ws_session::{ClientSession, Config, Incoming};
use futures::StreamExt;

/// An echo endpoint: text and binary come back as they went, pings are answered, a Close
/// is echoed.
async fn echo(req: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let mut stream = stream.aggregate_continuations();
    actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let sent = match message {
                AggregatedMessage::Text(text) => session.text(text).await,
                AggregatedMessage::Binary(bytes) => session.binary(bytes).await,
                AggregatedMessage::Ping(payload) => session.pong(&payload).await,
                AggregatedMessage::Pong(_) => Ok(()),
                AggregatedMessage::Close(reason) => {
                    let _ = session.close(reason).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = HttpServer::new(|| App::new().route("/echo", web::get().to(echo)))
        .workers(1)
        .bind(("127.0.0.1", 0))?;
    let port = server.addrs()[0].port();
    let server = server.run();
    let server_handle = server.handle();
    actix_web::rt::spawn(server);
    println!("echo server listening on 127.0.0.1:{port}");

    let url = format!("ws://127.0.0.1:{port}/echo");
    let config = Config::default().ping_interval(Some(Duration::from_millis(200)));
    let mut session = ClientSession::builder(url.as_str())
        .config(config)
        .connect_stream()
        .await?;
    println!(
        "connected to {} (status {})",
        session.handshake.url, session.handshake.status
    );

    session.handle.send_text("hello, actix").await?;
    println!("sent text: hello, actix");
    session.handle.send_binary(vec![1u8, 2, 3, 4]).await?;
    println!("sent binary: 4 bytes");
    session.handle.ping("are you there?").await?;
    println!("sent ping");

    let mut got_text = false;
    let mut got_binary = false;
    let mut got_pong = false;
    while !(got_text && got_binary && got_pong) {
        match session.incoming.next().await {
            Some(Incoming::Text(text)) => {
                println!("received text: {text}");
                got_text = true;
            }
            Some(Incoming::Binary(bytes)) => {
                println!("received binary: {:?}", &bytes[..]);
                got_binary = true;
            }
            Some(Incoming::Pong(payload)) if &payload[..] == b"are you there?" => {
                println!("received pong: {}", String::from_utf8_lossy(&payload));
                got_pong = true;
            }
            Some(Incoming::Closed(info)) => return Err(format!("closed early: {info:?}").into()),
            Some(_) | None => {}
        }
    }

    // Let the pinger measure a round trip.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let stats = session.handle.stats().await?;
    println!("pinger round trip: {:?}", stats.last_rtt);

    session.handle.close(1000, "done").await?;
    println!("sent close 1000");
    let mut result = Err("session ended without a Closed event".into());
    while let Some(event) = session.incoming.next().await {
        if let Incoming::Closed(info) = event {
            println!(
                "closed: code={} reason={:?} initiator={:?} clean={}",
                info.code, info.reason, info.initiator, info.clean
            );
            result = if info.clean {
                Ok(())
            } else {
                Err(format!("unclean close: {info:?}").into())
            };
        }
    }
    server_handle.stop(true).await;
    println!("server stopped");
    result
}
