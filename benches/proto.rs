//! Throughput of the wire format: masking, decoding and encoding.
//!
//! Run with `cargo bench --bench proto`. Throughput is in bytes on the wire (headers
//! included) per second; frames per second is that divided by the frame's wire length.
//!
//! * `mask`: `apply_mask` over 1 MiB, next to a plain `copy_from_slice` of 1 MiB.
//! * `decode`: `Receiver::poll` over a buffer of many unmasked binary frames (16 B, 1 KiB,
//!   64 KiB payloads); the buffer is a fresh clone of a prepared one per iteration, outside
//!   the timing. Payloads are split off without copying, so frames per second (throughput
//!   divided by the frame's wire length) is the telling figure here.
//! * `encode_masked`: `write_frame` with a mask key, the same frames into a reused buffer.

use std::hint::black_box;
use std::time::Duration;

use actix_ws_session::proto::{apply_mask, write_frame, Message, OpCode, Receiver, ReceiverLimits};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

const MIB: usize = 1 << 20;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Payload sizes of the decode and encode benches, and how many frames a batch holds.
const FRAMES: [(&str, usize, usize); 3] = [
    ("16B", 16, 16_384),
    ("1KiB", 1024, 1024),
    ("64KiB", 64 * 1024, 16),
];

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    group.throughput(Throughput::Bytes(MIB as u64));
    let src = payload(MIB);
    let mut buf = src.clone();
    group.bench_function("apply_mask/1MiB", |b| {
        b.iter(|| apply_mask(black_box(&mut buf[..]), black_box(KEY)))
    });
    let mut dst = vec![0u8; MIB];
    group.bench_function("copy_from_slice/1MiB", |b| {
        b.iter(|| black_box(&mut dst[..]).copy_from_slice(black_box(&src[..])))
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let limits = ReceiverLimits {
        max_frame_size: MIB,
        max_message_size: MIB,
        allowed_rsv: 0,
    };
    let mut group = c.benchmark_group("decode");
    for (name, size, count) in FRAMES {
        let data = payload(size);
        let mut wire = BytesMut::new();
        for _ in 0..count {
            write_frame(&mut wire, OpCode::Binary, true, 0, &data, None);
        }
        group.throughput(Throughput::Bytes(wire.len() as u64));
        // Decoding splits payloads off without copying, so it is much cheaper than the
        // (untimed) clone that refills the buffer; criterion times only the routine, so
        // shorter targets for the big frames keep the whole run short.
        let (warm_up, measure) = match size {
            0..=64 => (1000, 2000),
            65..=4096 => (300, 1000),
            _ => (30, 100),
        };
        group.warm_up_time(Duration::from_millis(warm_up));
        group.measurement_time(Duration::from_millis(measure));
        group.bench_with_input(BenchmarkId::new("receiver_poll", name), &wire, |b, wire| {
            b.iter_batched(
                || (wire.clone(), Receiver::new(limits)),
                |(mut buf, mut receiver)| {
                    let mut n = 0;
                    while let Some(message) = receiver.poll(&mut buf).unwrap() {
                        if let Message::Binary(bytes) = message {
                            n += bytes.len();
                        }
                    }
                    assert_eq!(n, size * count);
                    buf
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_masked");
    for (name, size, count) in FRAMES {
        let data = payload(size);
        let mut dst = BytesMut::new();
        for _ in 0..count {
            write_frame(&mut dst, OpCode::Binary, true, 0, &data, Some(KEY));
        }
        group.throughput(Throughput::Bytes(dst.len() as u64));
        group.bench_with_input(BenchmarkId::new("write_frame", name), &data, |b, data| {
            b.iter(|| {
                dst.clear();
                for _ in 0..count {
                    write_frame(
                        &mut dst,
                        OpCode::Binary,
                        true,
                        0,
                        black_box(data),
                        Some(black_box(KEY)),
                    );
                }
                black_box(dst.len())
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = mask, decode, encode
}
criterion_main!(benches);
