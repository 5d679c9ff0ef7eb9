//! Peer WebSocket clients for side-by-side load measurements.
//! Each client's driver lives in its own module under `clients/`.

pub mod common;
pub mod spin;
pub mod clients {
    pub mod awc_raw;
    pub mod fastwebsockets_mask;
    pub mod tokio_rt;
    pub mod tokio_tungstenite;
    pub mod tokio_websockets;
}
