//! Arbitrary bytes into `FrameHeader::parse`: it must never panic, a parsed header must
//! obey the header rules, and writing it back must give the same header.
#![no_main]

use actix_ws_session::proto::{FrameHeader, MAX_CONTROL_PAYLOAD};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match FrameHeader::parse(data) {
        Ok(Some((header, len))) => {
            assert!(len <= data.len() && len <= 14);
            assert!(header.rsv < 8);
            assert!(header.payload_len >> 63 == 0);
            if header.opcode.is_control() {
                assert!(header.fin);
                assert!(header.payload_len <= MAX_CONTROL_PAYLOAD as u64);
            }
            // Re-encoding uses the shortest length form, which the input need not have.
            let mut out = BytesMut::new();
            header.write(&mut out);
            assert_eq!(out.len(), header.encoded_len());
            assert!(out.len() <= len);
            assert_eq!(FrameHeader::parse(&out), Ok(Some((header, out.len()))));
        }
        Ok(None) => assert!(data.len() < 14),
        Err(error) => assert_eq!(error.close_code().as_u16(), 1002),
    }
});
