//! Property tests of the sans-I/O wire format in `actix_ws_session::proto`.
//!
//! Every property feeds the code under test bytes split at arbitrary points and compares it
//! with a simple model: the bytewise masking definition, `std::str::from_utf8`, the frames
//! and messages the stream was built from, or the same stream fed at once.

use actix_ws_session::proto::{
    apply_mask, apply_mask_from, encode_message, fragments, write_frame, CloseFrame, DeflateConfig,
    DeflateParams, Deflater, Frame, FrameDecoder, FrameHeader, Inflater, Message, OpCode,
    ProtocolError, Receiver, ReceiverLimits, Utf8Validator, MAX_CONTROL_PAYLOAD, RSV1,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// The lengths where the header's length encoding changes, and their neighbours.
const BOUNDARY_LENGTHS: [usize; 8] = [0, 1, 125, 126, 127, 65_535, 65_536, 65_537];

/// Deterministic bytes from a seed (splitmix64): large payloads without generating, and
/// shrinking, every byte through proptest.
fn fill(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn any_opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

/// Payload lengths concentrated on the encoding boundaries, plus small and large random ones.
fn data_len() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![
        3 => prop::sample::select(BOUNDARY_LENGTHS.to_vec()),
        2 => 0..300usize,
        1 => 0..70_000usize,
    ]
}

fn control_len() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![
        prop::sample::select(vec![0usize, 1, 124, 125]),
        0..=MAX_CONTROL_PAYLOAD,
    ]
}

/// A frame as the encoder is asked to write it: opcode, FIN, RSV bits, payload, mask key.
#[derive(Debug, Clone)]
struct FrameSpec {
    opcode: OpCode,
    fin: bool,
    rsv: u8,
    payload: Vec<u8>,
    mask: Option<[u8; 4]>,
}

/// Any frame that obeys the header rules: control frames have FIN and at most 125 bytes.
fn any_frame(
    len: impl Strategy<Value = usize> + Clone + 'static,
    rsv: impl Strategy<Value = u8> + Clone + 'static,
    mask: impl Strategy<Value = Option<[u8; 4]>> + Clone + 'static,
) -> impl Strategy<Value = FrameSpec> {
    any_opcode().prop_flat_map(move |opcode| {
        let control = opcode.is_control();
        let fin = if control {
            Just(true).boxed()
        } else {
            any::<bool>().boxed()
        };
        let len = if control {
            control_len().boxed()
        } else {
            len.clone().boxed()
        };
        (fin, rsv.clone(), len, any::<u64>(), mask.clone()).prop_map(
            move |(fin, rsv, len, seed, mask)| FrameSpec {
                opcode,
                fin,
                rsv,
                payload: fill(seed, len),
                mask,
            },
        )
    })
}

/// Chunk sizes, used in a cycle to split a stream: single bytes, small and large pieces.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![3 => 1..8usize, 2 => 1..300usize, 1 => 1..70_000usize],
        1..8,
    )
}

fn split<'a>(stream: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = stream;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        Some(piece)
    })
}

fn write(spec: &FrameSpec, dst: &mut BytesMut) {
    write_frame(
        dst,
        spec.opcode,
        spec.fin,
        spec.rsv,
        &spec.payload,
        spec.mask,
    );
}

fn header_of(spec: &FrameSpec) -> FrameHeader {
    FrameHeader {
        fin: spec.fin,
        rsv: spec.rsv,
        opcode: spec.opcode,
        mask: spec.mask,
        payload_len: spec.payload.len() as u64,
    }
}

// ---------------------------------------------------------------------------------------
// Feeding helpers
// ---------------------------------------------------------------------------------------

/// Decodes `stream` fed in pieces of `sizes`, until it ends or fails.
fn decode_frames(
    stream: &[u8],
    sizes: &[usize],
    max_frame: usize,
) -> (Vec<Frame>, Option<ProtocolError>) {
    let mut decoder = FrameDecoder::new(max_frame, 0b111);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in split(stream, sizes) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

/// Polls a receiver over `stream` fed in pieces of `sizes`, until it ends or fails.
fn receive(
    stream: &[u8],
    sizes: &[usize],
    limits: ReceiverLimits,
) -> (Vec<Message>, Option<ProtocolError>) {
    receive_with(Receiver::new(limits), stream, sizes)
}

/// As [`receive`], with a receiver built by the caller.
fn receive_with(
    mut receiver: Receiver,
    stream: &[u8],
    sizes: &[usize],
) -> (Vec<Message>, Option<ProtocolError>) {
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for piece in split(stream, sizes) {
        buf.extend_from_slice(piece);
        loop {
            match receiver.poll(&mut buf) {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, None)
}

const BIG: ReceiverLimits = ReceiverLimits {
    max_frame_size: 1 << 20,
    max_message_size: 1 << 22,
    allowed_rsv: 0,
};

// ---------------------------------------------------------------------------------------
// Messages for the reassembly properties
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Data {
    Text(String),
    Binary(Vec<u8>),
}

fn any_data() -> impl Strategy<Value = Data> {
    prop_oneof![
        any::<String>().prop_map(Data::Text),
        "[a-zé€𝄞\u{10FFFF} ]{0,200}".prop_map(Data::Text),
        prop::collection::vec(any::<u8>(), 0..400).prop_map(Data::Binary),
        (
            prop::sample::select(BOUNDARY_LENGTHS.to_vec()),
            any::<u64>()
        )
            .prop_map(|(len, seed)| Data::Binary(fill(seed, len))),
    ]
}

/// A control frame to interleave: its opcode and payload, and the message it becomes.
fn any_control() -> impl Strategy<Value = (OpCode, Vec<u8>, Message)> {
    let code = prop::sample::select(vec![1000u16, 1001, 1002, 1003, 1007, 1011, 3000, 4999]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(|p| {
            let message = Message::Ping(Bytes::from(p.clone()));
            (OpCode::Ping, p, message)
        }),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(|p| {
            let message = Message::Pong(Bytes::from(p.clone()));
            (OpCode::Pong, p, message)
        }),
        (code, "[a-zκόσμε€ ]{0,30}").prop_map(|(code, reason)| {
            let close = CloseFrame::new(code, reason).unwrap();
            let payload = close.to_payload().to_vec();
            (OpCode::Close, payload, Message::Close(Some(close)))
        }),
        Just((OpCode::Close, Vec::new(), Message::Close(None))),
    ]
}

/// A message, its fragment size, and the control frames to put after each fragment.
type Planned = (Data, usize, Vec<Vec<(OpCode, Vec<u8>, Message)>>);

fn any_planned() -> impl Strategy<Value = Planned> {
    (
        any_data(),
        prop_oneof![Just(0usize), 1..8usize, 1..500usize, 1..70_000usize],
        prop::collection::vec(prop::collection::vec(any_control(), 0..3), 0..6),
    )
}

/// Splits an encoded buffer back into whole frames (as bytes), by their headers.
fn frame_slices(mut wire: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let (header, len) = FrameHeader::parse(wire).unwrap().unwrap();
        let total = len + header.payload_len as usize;
        out.push(&wire[..total]);
        wire = &wire[total..];
    }
    out
}

/// Encodes the messages with `encode_message`, puts the control frames between their
/// fragments, and returns the stream and the messages the receiver must produce.
fn build_stream(plans: &[Planned]) -> (Vec<u8>, Vec<Message>) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (data, fragment_size, controls) in plans {
        let (opcode, bytes, message) = match data {
            Data::Text(s) => (OpCode::Text, s.as_bytes(), Message::Text(s.as_str().into())),
            Data::Binary(b) => (
                OpCode::Binary,
                &b[..],
                Message::Binary(Bytes::from(b.clone())),
            ),
        };
        let mut encoded = BytesMut::new();
        encode_message(&mut encoded, opcode, bytes, *fragment_size, || None);
        let frames = frame_slices(&encoded);
        for (i, frame) in frames.iter().enumerate() {
            stream.extend_from_slice(frame);
            // Control frames only between fragments, not after the last one.
            if i + 1 < frames.len() {
                for (op, payload, control) in controls.get(i).into_iter().flatten() {
                    let mut dst = BytesMut::new();
                    write_frame(&mut dst, *op, true, 0, payload, None);
                    stream.extend_from_slice(&dst);
                    expected.push(control.clone());
                }
            }
        }
        expected.push(message);
    }
    (stream, expected)
}

// ---------------------------------------------------------------------------------------
// UTF-8 model
// ---------------------------------------------------------------------------------------

/// Where `std` says `bytes` stop being UTF-8: `Ok(())`, `Err(Some(i))` with `i` the first
/// byte that cannot start or continue a code point, or `Err(None)` for an incomplete tail.
fn std_utf8(bytes: &[u8]) -> Result<(), Option<usize>> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        Err(e) => {
            let at = e.valid_up_to();
            Err(e.error_len().map(|len| {
                // A byte that is no lead byte is bad itself; after a lead byte, the bad
                // byte is the one that ended the maximal valid prefix of the sequence.
                if matches!(bytes[at], 0xC2..=0xF4) {
                    at + len
                } else {
                    at
                }
            }))
        }
    }
}

/// Mostly-valid text with a few bytes overwritten or inserted, or arbitrary bytes biased
/// toward the interesting high range.
fn utf8_candidate() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        any::<u8>(),
        0x80..=0xBFu8,
        0xC0..=0xC2u8,
        0xE0..=0xEDu8,
        0xF0..=0xF5u8,
    ];
    prop_oneof![
        any::<String>().prop_map(String::into_bytes),
        (
            any::<String>(),
            prop::collection::vec(
                (any::<prop::sample::Index>(), byte.clone(), any::<bool>()),
                1..4
            ),
        )
            .prop_map(|(s, edits)| {
                let mut bytes = s.into_bytes();
                for (at, b, insert) in edits {
                    if insert || bytes.is_empty() {
                        let i = at.index(bytes.len() + 1);
                        bytes.insert(i, b);
                    } else {
                        let i = at.index(bytes.len());
                        bytes[i] = b;
                    }
                }
                bytes
            }),
        prop::collection::vec(byte, 0..40),
    ]
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// write_frame, then parse / decode / unmask, gives the frame back.
    #[test]
    fn frames_round_trip(
        spec in any_frame(data_len(), 0..8u8, prop::option::of(any::<[u8; 4]>()))
    ) {
        let mut wire = BytesMut::new();
        write(&spec, &mut wire);
        let header = header_of(&spec);
        let (parsed, header_len) = FrameHeader::parse(&wire).unwrap().unwrap();
        prop_assert_eq!(parsed, header);
        prop_assert_eq!(header_len, header.encoded_len());
        prop_assert_eq!(wire.len(), header_len + spec.payload.len());
        // Every strict prefix of the header asks for more bytes.
        for cut in 0..header_len {
            prop_assert_eq!(FrameHeader::parse(&wire[..cut]), Ok(None));
        }
        match spec.mask {
            None => {
                let mut decoder = FrameDecoder::new(1 << 20, 0b111);
                let frame = decoder.decode(&mut wire).unwrap().unwrap();
                prop_assert_eq!(frame.header, header);
                prop_assert_eq!(&frame.payload[..], &spec.payload[..]);
                prop_assert!(wire.is_empty());
            }
            Some(key) => {
                let mut payload = wire.split_off(header_len);
                // Masking changes the payload unless every key byte it uses is zero (a
                // payload shorter than 4 bytes uses only the key's first bytes).
                let used_key_is_zero = key.iter().take(spec.payload.len()).all(|&b| b == 0);
                prop_assert_eq!(used_key_is_zero, payload[..] == spec.payload[..]);
                apply_mask(&mut payload, key);
                prop_assert_eq!(&payload[..], &spec.payload[..]);
            }
        }
    }

    /// encode_message with per-frame masks: the frames unmask back to the message.
    #[test]
    fn masked_messages_unmask_to_the_payload(
        data in any_data(),
        fragment_size in prop_oneof![Just(0usize), 1..600usize],
        keys in prop::collection::vec(prop::option::of(any::<[u8; 4]>()), 1..8),
    ) {
        let (opcode, bytes) = match &data {
            Data::Text(s) => (OpCode::Text, s.as_bytes()),
            Data::Binary(b) => (OpCode::Binary, &b[..]),
        };
        let mut wire = BytesMut::new();
        let mut n = 0;
        encode_message(&mut wire, opcode, bytes, fragment_size, || {
            n += 1;
            keys[(n - 1) % keys.len()]
        });
        let frames = frame_slices(&wire);
        prop_assert_eq!(frames.len(), n);
        let mut joined = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let (header, len) = FrameHeader::parse(frame).unwrap().unwrap();
            prop_assert_eq!(header.mask, keys[i % keys.len()]);
            prop_assert_eq!(header.fin, i + 1 == frames.len());
            let expected_op = if i == 0 { opcode } else { OpCode::Continuation };
            prop_assert_eq!(header.opcode, expected_op);
            if fragment_size > 0 {
                prop_assert!(header.payload_len as usize <= fragment_size);
            }
            let mut payload = frame[len..].to_vec();
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key);
            }
            joined.extend_from_slice(&payload);
        }
        prop_assert_eq!(&joined[..], bytes);
    }

    /// A stream of frames decodes to the same frames however it is split.
    #[test]
    fn frame_decoder_ignores_how_the_stream_is_split(
        specs in prop::collection::vec(
            any_frame(
                prop_oneof![4 => 0..200usize, 1 => prop::sample::select(BOUNDARY_LENGTHS.to_vec())],
                prop_oneof![4 => Just(0u8), 1 => 0..8u8],
                Just(None),
            ),
            0..8,
        ),
        sizes in chunk_sizes(),
    ) {
        let mut wire = BytesMut::new();
        for spec in &specs {
            write(spec, &mut wire);
        }
        let at_once = decode_frames(&wire, &[wire.len().max(1)], 1 << 20);
        let chunked = decode_frames(&wire, &sizes, 1 << 20);
        prop_assert_eq!(&at_once, &chunked);
        let (frames, error) = at_once;
        prop_assert_eq!(error, None);
        prop_assert_eq!(frames.len(), specs.len());
        for (frame, spec) in frames.iter().zip(&specs) {
            prop_assert_eq!(frame.header, header_of(spec));
            prop_assert_eq!(&frame.payload[..], &spec.payload[..]);
        }
    }

    /// Fragmented messages with control frames in between come out of the receiver as the
    /// control frames, in order, then the message: at once and split arbitrarily.
    #[test]
    fn receiver_reassembles_fragmented_messages_around_control_frames(
        plans in prop::collection::vec(any_planned(), 1..5),
        sizes in chunk_sizes(),
    ) {
        let (stream, expected) = build_stream(&plans);
        let (at_once, error) = receive(&stream, &[stream.len().max(1)], BIG);
        prop_assert_eq!(error, None);
        prop_assert_eq!(&at_once, &expected);
        let (chunked, error) = receive(&stream, &sizes, BIG);
        prop_assert_eq!(error, None);
        prop_assert_eq!(&chunked, &expected);
        for message in &chunked {
            if let Message::Text(text) = message {
                prop_assert!(std::str::from_utf8(text.as_bytes()).is_ok());
            }
        }
    }

}

proptest! {
    // Cheap cases that find more the more they run.
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes (raw, or valid frames with garbage and corruptions mixed in) never
    /// panic the receiver, every error is 1002, 1007 or 1009, every text message is UTF-8,
    /// and splitting the stream changes nothing.
    #[test]
    fn receiver_survives_arbitrary_bytes(
        stream in hostile_stream(),
        sizes in chunk_sizes(),
        max_frame_size in prop_oneof![0..16usize, 0..300usize, Just(1 << 20)],
        max_message_size in prop_oneof![0..64usize, 0..1000usize, Just(1 << 20)],
        allowed_rsv in prop_oneof![Just(0u8), Just(0b100u8), 0..8u8],
    ) {
        let limits = ReceiverLimits { max_frame_size, max_message_size, allowed_rsv };
        let at_once = receive(&stream, &[stream.len().max(1)], limits);
        let chunked = receive(&stream, &sizes, limits);
        for (messages, error) in [&at_once, &chunked] {
            if let Some(error) = error {
                let code = error.close_code().as_u16();
                prop_assert!(matches!(code, 1002 | 1007 | 1009), "{error:?} -> {code}");
            }
            for message in messages {
                match message {
                    Message::Text(text) => {
                        prop_assert!(std::str::from_utf8(text.as_bytes()).is_ok());
                    }
                    Message::Ping(p) | Message::Pong(p) => prop_assert!(p.len() <= 125),
                    Message::Close(Some(close)) => prop_assert!(close.code().is_sendable()),
                    _ => {}
                }
            }
        }
        prop_assert_eq!(&at_once, &chunked);
    }

    /// Messages compressed as a server would (permessage-deflate, with or without context
    /// takeover), fragmented and fed in pieces, inflate to exactly what was sent, up to the
    /// first that must fail: over the size limit (1009) or, for text, not UTF-8 (1007).
    #[test]
    fn compressed_messages_inflate_to_what_was_sent(
        messages in prop::collection::vec(
            (any::<bool>(), prop_oneof![
                2 => any::<String>().prop_map(String::into_bytes),
                1 => prop::collection::vec(any::<u8>(), 0..600),
                // Long runs of one letter: compress well, and pass the limit inflated.
                1 => (0..3000usize, b'a'..=b'g').prop_map(|(len, letter)| vec![letter; len]),
            ]),
            1..6,
        ),
        fragments_per_message in 1..5usize,
        reset_each_message in any::<bool>(),
        sizes in chunk_sizes(),
    ) {
        const MAX_MESSAGE: usize = 2048;
        let params = DeflateParams {
            client_no_context_takeover: reset_each_message,
            server_no_context_takeover: reset_each_message,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
        };
        let mut server = Deflater::new(&params, 6);
        let mut wire = BytesMut::new();
        for (text, payload) in &messages {
            let compressed = server.compress(payload);
            let opcode = if *text { OpCode::Text } else { OpCode::Binary };
            let piece_len = compressed.len().div_ceil(fragments_per_message);
            for plan in fragments(opcode, compressed.len(), piece_len) {
                let rsv = if plan.range.start == 0 { RSV1 } else { 0 };
                let piece = &compressed[plan.range];
                write_frame(&mut wire, plan.opcode, plan.fin, rsv, piece, None);
            }
        }
        let limits = ReceiverLimits {
            max_frame_size: 1 << 20,
            max_message_size: MAX_MESSAGE,
            allowed_rsv: 0,
        };
        let receiver = Receiver::with_inflater(limits, Inflater::new(&params));
        let (received, error) = receive_with(receiver, &wire, &sizes);

        // The close codes each message may fail with, none if it must come through. Both
        // for text too large and not UTF-8: the size is checked as each fragment inflates,
        // the text as it comes out, so either may be found first.
        let may_fail_with: Vec<Vec<u16>> = messages
            .iter()
            .map(|(text, payload)| {
                let mut codes = Vec::new();
                if payload.len() > MAX_MESSAGE {
                    codes.push(1009);
                }
                if *text && std::str::from_utf8(payload).is_err() {
                    codes.push(1007);
                }
                codes
            })
            .collect();
        let first_bad = may_fail_with.iter().position(|codes| !codes.is_empty());
        prop_assert_eq!(received.len(), first_bad.unwrap_or(messages.len()));
        for (message, (text, payload)) in received.iter().zip(&messages) {
            match message {
                Message::Text(got) => {
                    prop_assert!(*text);
                    prop_assert_eq!(got.as_bytes(), &payload[..]);
                }
                Message::Binary(got) => {
                    prop_assert!(!*text);
                    prop_assert_eq!(&got[..], &payload[..]);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        match first_bad {
            None => prop_assert!(error.is_none(), "unexpected {:?}", error),
            Some(i) => {
                let code = error.map(|e| e.close_code().as_u16());
                prop_assert!(
                    code.is_some_and(|code| may_fail_with[i].contains(&code)),
                    "message {} failed with {:?}", i, code
                );
            }
        }
    }

    /// A server's `Sec-WebSocket-Extensions` answer, in any parameter order, spacing, name
    /// case and quoting, is read back as the parameters it states, or refused exactly when
    /// it breaks the offer: it drops a `server_no_context_takeover` the client asked for,
    /// or limits the client's window without having been offered to.
    #[test]
    fn deflate_answers_are_read_as_they_state(
        offer in (any::<bool>(), any::<bool>(), any::<bool>()),
        server_no_context_takeover in any::<bool>(),
        client_no_context_takeover in any::<bool>(),
        server_max_window_bits in prop::option::of(8..=15u8),
        client_max_window_bits in prop::option::of(9..=15u8),
        quoted in any::<bool>(),
        spaces in prop_oneof![Just(""), Just(" "), Just("  ")],
        upper_name in any::<bool>(),
        order in Just((0..4usize).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let (offer_cnct, offer_snct, offer_cmwb) = offer;
        let config = DeflateConfig::default()
            .client_no_context_takeover(offer_cnct)
            .server_no_context_takeover(offer_snct)
            .client_max_window_bits(offer_cmwb);
        let value = |bits: u8| if quoted { format!("\"{bits}\"") } else { bits.to_string() };
        let stated = [
            server_no_context_takeover.then(|| "server_no_context_takeover".to_string()),
            client_no_context_takeover.then(|| "client_no_context_takeover".to_string()),
            server_max_window_bits.map(|b| format!("server_max_window_bits={}", value(b))),
            client_max_window_bits.map(|b| format!("client_max_window_bits={}", value(b))),
        ];
        let name = if upper_name { "PerMessage-Deflate" } else { "permessage-deflate" };
        let mut answer = name.to_string();
        for i in &order {
            if let Some(param) = &stated[*i] {
                answer.push_str(&format!("{spaces};{spaces}{param}"));
            }
        }

        let refused = (offer_snct && !server_no_context_takeover)
            || (client_max_window_bits.is_some() && !offer_cmwb);
        match config.accept(&answer) {
            Ok(params) => {
                prop_assert!(!refused, "{answer:?} accepted");
                prop_assert_eq!(params, DeflateParams {
                    client_no_context_takeover: offer_cnct || client_no_context_takeover,
                    server_no_context_takeover,
                    client_max_window_bits: client_max_window_bits.unwrap_or(15),
                    server_max_window_bits: server_max_window_bits.unwrap_or(15),
                });
            }
            Err(error) => prop_assert!(refused, "{answer:?} refused: {error}"),
        }
    }

    /// Any answer made of the answer's own pieces, well formed or not, is accepted or
    /// refused with an error, never a panic; what is accepted is within RFC 7692's limits.
    #[test]
    fn deflate_answers_never_panic(
        pieces in prop::collection::vec(prop_oneof![
            Just("permessage-deflate"), Just("x-webkit-deflate-frame"), Just(";"), Just(","),
            Just("="), Just("\""), Just(" "), Just("server_no_context_takeover"),
            Just("client_no_context_takeover"), Just("server_max_window_bits"),
            Just("client_max_window_bits"), Just("8"), Just("15"), Just("16"), Just("-1"),
            Just("300"), Just("é"),
        ], 0..12),
    ) {
        let answer: String = pieces.concat();
        if let Ok(params) = DeflateConfig::default().accept(&answer) {
            prop_assert!((8..=15).contains(&params.server_max_window_bits), "{answer:?}");
            prop_assert!((9..=15).contains(&params.client_max_window_bits), "{answer:?}");
        }
    }

    /// The incremental validator agrees with `std::str::from_utf8` and fails in the piece
    /// that holds the first invalid byte, at that byte's offset.
    #[test]
    fn utf8_validator_agrees_with_std(
        bytes in utf8_candidate(),
        sizes in prop::collection::vec(1..12usize, 1..6),
    ) {
        let expected = std_utf8(&bytes);
        let mut validator = Utf8Validator::new();
        let mut failed = None;
        let mut start = 0;
        for (i, piece) in split(&bytes, &sizes).enumerate() {
            if let Err(e) = validator.feed(piece) {
                failed = Some((i, start, start + piece.len(), e));
                break;
            }
            start += piece.len();
        }
        match (expected, failed) {
            (Ok(()), None) => prop_assert_eq!(validator.finish(), Ok(())),
            (Err(None), None) => prop_assert_eq!(
                validator.finish(),
                Err(ProtocolError::InvalidUtf8 { offset: bytes.len() as u64 })
            ),
            (Err(Some(bad)), Some((_, start, end, e))) => {
                prop_assert!(start <= bad && bad < end, "bad byte {bad} not in piece {start}..{end}");
                prop_assert_eq!(e, ProtocolError::InvalidUtf8 { offset: bad as u64 });
            }
            (expected, failed) => {
                prop_assert!(false, "std says {expected:?}, validator failed at {failed:?}");
            }
        }
        // The validator starts over after `finish` or an error.
        let mut validator = Utf8Validator::new();
        let _ = validator.feed(&bytes);
        let _ = validator.finish();
        prop_assert_eq!(validator.feed("€ok".as_bytes()), Ok(()));
        prop_assert_eq!(validator.finish(), Ok(()));
    }

    /// The masking kernel equals `byte[i] ^= key[(phase + i) % 4]` at every alignment.
    #[test]
    fn mask_kernel_matches_the_bytewise_definition(
        buf in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            (0..5000usize, any::<u64>()).prop_map(|(len, seed)| fill(seed, len)),
        ],
        key in any::<[u8; 4]>(),
        phase in any::<usize>(),
        offset in 0..16usize,
    ) {
        let offset = offset.min(buf.len());
        let mut fast = buf.clone();
        let mut slow = buf.clone();
        apply_mask_from(&mut fast[offset..], key, phase);
        for (i, byte) in slow[offset..].iter_mut().enumerate() {
            *byte ^= key[(phase % 4 + i) % 4];
        }
        prop_assert_eq!(&fast, &slow);
        // Masking in two pieces equals masking at once.
        let cut = buf.len() / 3;
        let mut pieces = buf.clone();
        let (a, b) = pieces.split_at_mut(cut);
        apply_mask_from(a, key, phase);
        apply_mask_from(b, key, phase.wrapping_add(cut));
        if phase.checked_add(cut).is_some() {
            let mut whole = buf.clone();
            apply_mask_from(&mut whole, key, phase);
            prop_assert_eq!(&pieces, &whole);
        }
    }
}

/// Streams for the robustness property: raw bytes, or segments of well-formed frames
/// (any opcode, FIN, RSV, mask) and garbage, with a few bytes flipped.
fn hostile_stream() -> impl Strategy<Value = Vec<u8>> {
    let segment = prop_oneof![
        4 => any_frame(
            prop_oneof![0..40usize, 0..400usize],
            prop_oneof![4 => Just(0u8), 1 => 0..8u8],
            prop_oneof![6 => Just(None), 1 => prop::option::of(any::<[u8; 4]>())],
        )
        .prop_map(|spec| {
            let mut dst = BytesMut::new();
            write(&spec, &mut dst);
            dst.to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..20),
        2 => (
            prop_oneof![Just(OpCode::Text), Just(OpCode::Continuation)],
            any::<bool>(),
            prop_oneof![3 => Just(0u8), 1 => Just(0b100u8)],
            utf8_candidate(),
        )
            .prop_map(|(opcode, fin, rsv, text)| {
                // (Possibly compressed) text, to reach the UTF-8 paths of reassembly.
                let mut dst = BytesMut::new();
                write_frame(&mut dst, opcode, fin, rsv, &text, None);
                dst.to_vec()
            }),
    ];
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        4 => (
            prop::collection::vec(segment, 0..10),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        )
            .prop_map(|(segments, flips)| {
                let mut stream = segments.concat();
                if !stream.is_empty() {
                    for (at, xor) in flips {
                        let i = at.index(stream.len());
                        stream[i] ^= xor;
                    }
                }
                stream
            }),
    ]
}

// ---------------------------------------------------------------------------------------
// Regressions found by the properties above
// ---------------------------------------------------------------------------------------

/// The offset of a UTF-8 error did not depend on how the text was split: it used to be
/// the start of the bad sequence when one piece held all of it, and the bad byte when the
/// sequence straddled two pieces.
#[test]
fn utf8_error_offset_is_the_bad_byte_whatever_the_split() {
    let bytes = [b'a', 0xE2, 0x28];
    for sizes in [&[3usize][..], &[2, 1], &[1]] {
        let mut validator = Utf8Validator::new();
        let error = split(&bytes, sizes).find_map(|piece| validator.feed(piece).err());
        assert_eq!(
            error,
            Some(ProtocolError::InvalidUtf8 { offset: 2 }),
            "{sizes:?}"
        );
    }
}

/// Text frames with RSV1 (negotiated for an extension) are not validated on arrival; they
/// used to become `Message::Text` without any UTF-8 check at all.
#[test]
fn text_with_rsv1_is_still_checked_before_it_becomes_a_string() {
    let limits = ReceiverLimits {
        max_frame_size: 100,
        max_message_size: 100,
        allowed_rsv: 0b100,
    };
    let mut wire = BytesMut::new();
    write_frame(&mut wire, OpCode::Text, true, 0b100, &[b'o', 0xFF], None);
    assert_eq!(
        Receiver::new(limits).poll(&mut wire),
        Err(ProtocolError::InvalidUtf8 { offset: 1 })
    );
    // Fragmented: the continuation is not validated on its own either.
    let mut wire = BytesMut::new();
    write_frame(&mut wire, OpCode::Text, false, 0b100, &[0xE2, 0x82], None);
    write_frame(&mut wire, OpCode::Continuation, true, 0, &[0xAC], None);
    assert_eq!(
        Receiver::new(limits).poll(&mut wire),
        Ok(Some(Message::Text("€".into())))
    );
}
