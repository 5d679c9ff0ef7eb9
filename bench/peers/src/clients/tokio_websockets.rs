//! tokio-websockets driver: own `TcpStream` (TCP_NODELAY on) handed to
//! `ClientBuilder::connect_on`, limits raised to 64 MiB. Its masking routine
//! is private, so `mask-kernel` reports nulls.

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio_websockets::{ClientBuilder, Config, Error, Limits, Message, WebSocketStream};

use super::tokio_rt::TokioClient;
use crate::common::{Args, Inbound, Report};

pub struct TokioWebsockets {
    uri: http::Uri,
    addr: String,
}

impl TokioWebsockets {
    pub fn new(url: &str) -> Self {
        let uri: http::Uri = url.parse().unwrap_or_else(|e| crate::common::die(&format!("bad url {url}: {e}")));
        let host = uri.host().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']');
        let addr = format!("{}:{}", host, uri.port_u16().unwrap_or(80));
        TokioWebsockets { uri, addr }
    }
}

impl TokioClient for TokioWebsockets {
    type In = Message;
    type Out = Message;
    type E1 = Error;
    type E2 = Error;
    type Ws = WebSocketStream<TcpStream>;

    async fn connect(&self, _url: &str) -> Result<Self::Ws, String> {
        let tcp = TcpStream::connect(&self.addr).await.map_err(|e| format!("tcp connect {}: {e}", self.addr))?;
        tcp.set_nodelay(true).ok();
        ClientBuilder::from_uri(self.uri.clone())
            .limits(Limits::default().max_payload_len(Some(64 << 20)))
            .config(Config::default().frame_size(64 << 20))
            .connect_on(tcp)
            .await
            .map(|(ws, _resp)| ws)
            .map_err(|e| format!("tokio-websockets connect: {e}"))
    }

    fn msg(payload: &Bytes) -> Message {
        Message::binary(payload.clone())
    }

    fn classify(item: &Message) -> Inbound {
        if item.is_binary() || item.is_text() {
            Inbound::Data(item.as_payload().len())
        } else if item.is_close() {
            Inbound::Closed
        } else {
            Inbound::Other
        }
    }
}

pub fn run(a: &Args) -> Report {
    super::tokio_rt::run(TokioWebsockets::new(&a.url), a)
}
