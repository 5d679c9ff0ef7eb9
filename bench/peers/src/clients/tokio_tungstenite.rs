//! tokio-tungstenite driver: `connect_async_with_config` (TCP_NODELAY on),
//! limits raised to 64 MiB. tungstenite keeps its masking routine private, so
//! `mask-kernel` reports nulls.

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::tokio_rt::TokioClient;
use crate::common::{Args, Inbound, Report};

pub struct TokioTungstenite;

impl TokioClient for TokioTungstenite {
    type In = Message;
    type Out = Message;
    type E1 = Error;
    type E2 = Error;
    type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

    async fn connect(&self, url: &str) -> Result<Self::Ws, String> {
        let cfg = WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        tokio_tungstenite::connect_async_with_config(url, Some(cfg), true)
            .await
            .map(|(ws, _resp)| ws)
            .map_err(|e| format!("tokio-tungstenite connect: {e}"))
    }

    fn msg(payload: &Bytes) -> Message {
        Message::Binary(payload.clone())
    }

    fn classify(item: &Message) -> Inbound {
        match item {
            Message::Binary(b) => Inbound::Data(b.len()),
            Message::Text(t) => Inbound::Data(t.len()),
            Message::Close(_) => Inbound::Closed,
            _ => Inbound::Other,
        }
    }
}

pub fn run(a: &Args) -> Report {
    super::tokio_rt::run(TokioTungstenite, a)
}
