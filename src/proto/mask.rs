//! The masking transform of RFC 6455 §5.3: `byte[i] ^= key[(phase + i) % 4]`.
//!
//! The key always comes from the caller; this module holds no random generator. The kernel
//! works on 64-byte blocks of a repeated key (which the compiler turns into vector XORs) and
//! finishes the tail eight bytes at a time. On x86-64 CPUs with AVX2 the same loop is
//! compiled a second time with AVX2 enabled and chosen at run time (twice the vector width
//! of the SSE2 baseline). Masking and unmasking are the same operation. [`extend_masked`] is the
//! encoder's variant: it masks while copying into the output buffer, one pass instead of a
//! copy and a second pass over the copy.

use bytes::BytesMut;

/// Length of the block the kernel processes at a time.
pub(crate) const BLOCK: usize = 64;

/// XORs `buf` with `key`, starting at key byte 0.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    apply_mask_from(buf, key, 0);
}

/// XORs `buf` with `key`, starting at key byte `phase % 4`.
///
/// Use this to mask a payload in pieces: the piece that starts at payload offset `n`
/// takes `phase = n`.
pub fn apply_mask_from(buf: &mut [u8], key: [u8; 4], phase: usize) {
    let key = rotate_key(key, phase);
    let whole = buf.len() - buf.len() % BLOCK;
    let (blocks, tail) = buf.split_at_mut(whole);
    if !blocks.is_empty() {
        xor_blocks(blocks, &block_key(key));
    }
    // A block is a multiple of 4 bytes long, so the tail starts at key byte 0 again.
    xor_tail(tail, key);
}

/// XORs one block with `key`, from key byte 0: eight `u64` words, a loop the compiler
/// unrolls, for a short payload placed in a block-sized scratch area.
pub(crate) fn mask_block(block: &mut [u8; BLOCK], key: [u8; 4]) {
    let wide_key = wide(key);
    for word in block.chunks_exact_mut(8) {
        xor_word(word, wide_key);
    }
}

/// `key` twice, as one word: the bytes `[a, b, c, d, a, b, c, d]` in memory order, on a
/// machine of either byte order (both halves are the same four bytes).
fn wide(key: [u8; 4]) -> u64 {
    let half = u64::from(u32::from_ne_bytes(key));
    half | (half << 32)
}

/// XORs an eight-byte `word` with `wide_key`.
fn xor_word(word: &mut [u8], wide_key: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(word);
    word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide_key).to_ne_bytes());
}

/// XORs a tail shorter than a block, from key byte 0: eight bytes at a time in a `u64`,
/// then byte by byte. Small messages are all tail, so this is their whole masking cost.
fn xor_tail(tail: &mut [u8], key: [u8; 4]) {
    let wide_key = wide(key);
    let mut words = tail.chunks_exact_mut(8);
    for word in &mut words {
        xor_word(word, wide_key);
    }
    // The rest starts at a multiple of 8 bytes: key byte 0 again.
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Appends `src` XORed with `key` (from key byte 0) to `dst`: the same bytes as copying
/// and then calling [`apply_mask`], in one pass over the memory instead of two.
pub fn extend_masked(dst: &mut BytesMut, src: &[u8], key: [u8; 4]) {
    dst.reserve(src.len());
    let whole = src.len() - src.len() % BLOCK;
    let (blocks, tail) = src.split_at(whole);
    if !blocks.is_empty() {
        extend_blocks(dst, blocks, &block_key(key));
    }
    // A block is a multiple of 4 bytes long, so the tail starts at key byte 0 again.
    let start = dst.len();
    dst.extend_from_slice(tail);
    xor_tail(&mut dst[start..], key);
}

/// Appends whole blocks XORed with the repeated key, with the widest vectors the CPU
/// offers.
fn extend_blocks(dst: &mut BytesMut, blocks: &[u8], block_key: &[u8; BLOCK]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: `extend_blocks_avx2` requires only AVX2, and the CPU was just found to
        // support it. Equivalence with the portable loop is tested in
        // `tests::avx2_and_portable_appending_kernels_agree`.
        unsafe { extend_blocks_avx2(dst, blocks, block_key) };
        return;
    }
    extend_blocks_portable(dst, blocks, block_key);
}

#[inline(always)]
fn extend_blocks_portable(dst: &mut BytesMut, blocks: &[u8], block_key: &[u8; BLOCK]) {
    for block in blocks.chunks_exact(BLOCK) {
        let mut masked = [0u8; BLOCK];
        for ((out, byte), k) in masked.iter_mut().zip(block).zip(block_key) {
            *out = byte ^ k;
        }
        dst.extend_from_slice(&masked);
    }
}

/// The portable appending loop, compiled with AVX2 enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn extend_blocks_avx2(dst: &mut BytesMut, blocks: &[u8], block_key: &[u8; BLOCK]) {
    extend_blocks_portable(dst, blocks, block_key);
}

/// XORs whole blocks with the repeated key, with the widest vectors the CPU offers.
fn xor_blocks(blocks: &mut [u8], block_key: &[u8; BLOCK]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: `xor_blocks_avx2` requires only AVX2, and the CPU was just found to
        // support it. Equivalence with the portable loop is tested in
        // `tests::avx2_and_portable_kernels_agree`.
        unsafe { xor_blocks_avx2(blocks, block_key) };
        return;
    }
    xor_blocks_portable(blocks, block_key);
}

#[inline(always)]
fn xor_blocks_portable(blocks: &mut [u8], block_key: &[u8; BLOCK]) {
    for block in blocks.chunks_exact_mut(BLOCK) {
        for (byte, k) in block.iter_mut().zip(block_key.iter()) {
            *byte ^= k;
        }
    }
}

/// The portable loop, compiled with AVX2 enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn xor_blocks_avx2(blocks: &mut [u8], block_key: &[u8; BLOCK]) {
    xor_blocks_portable(blocks, block_key);
}

/// `key` repeated over a whole block.
fn block_key(key: [u8; 4]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    for word in block.chunks_exact_mut(4) {
        word.copy_from_slice(&key);
    }
    block
}

/// The key as seen from payload offset `phase`.
fn rotate_key(key: [u8; 4], phase: usize) -> [u8; 4] {
    let shift = phase % 4;
    [
        key[shift],
        key[(shift + 1) % 4],
        key[(shift + 2) % 4],
        key[(shift + 3) % 4],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytewise(buf: &mut [u8], key: [u8; 4], phase: usize) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= key[(phase + i) % 4];
        }
    }

    #[test]
    fn kernel_equals_the_bytewise_definition_for_every_length_offset_and_phase() {
        let key = [0x9b, 0x1f, 0xe4, 0x37];
        let source: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
        for offset in 0..16 {
            for len in 0..=70 {
                for phase in 0..4 {
                    let mut fast = source.clone();
                    let mut slow = source.clone();
                    apply_mask_from(&mut fast[offset..offset + len], key, phase);
                    bytewise(&mut slow[offset..offset + len], key, phase);
                    assert_eq!(fast, slow, "offset {offset} len {len} phase {phase}");
                }
            }
        }
    }

    #[test]
    fn long_buffers_match_too() {
        let key = [1, 2, 3, 4];
        for len in [127, 128, 129, 4096, 65_537] {
            let mut fast: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut slow = fast.clone();
            apply_mask(&mut fast, key);
            bytewise(&mut slow, key, 0);
            assert_eq!(fast, slow, "len {len}");
        }
    }

    #[test]
    fn avx2_and_portable_kernels_agree() {
        let block_key = block_key([0x9b, 0x1f, 0xe4, 0x37]);
        let source: Vec<u8> = (0..BLOCK * 40).map(|i| (i * 13 + 1) as u8).collect();
        let mut portable = source.clone();
        xor_blocks_portable(&mut portable, &block_key);
        let mut chosen = source.clone();
        xor_blocks(&mut chosen, &block_key);
        assert_eq!(portable, chosen);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            let mut avx2 = source.clone();
            // SAFETY: AVX2 support was checked just above.
            unsafe { xor_blocks_avx2(&mut avx2, &block_key) };
            assert_eq!(portable, avx2);
        }
    }

    #[test]
    fn extend_masked_equals_copy_then_mask() {
        let key = [0x9b, 0x1f, 0xe4, 0x37];
        let source: Vec<u8> = (0..300u32).map(|i| (i * 31 + 7) as u8).collect();
        for prefix in [0, 3] {
            for len in (0..=200).chain([256, 299]) {
                let mut fused = BytesMut::from(&b"hdr"[..prefix]);
                extend_masked(&mut fused, &source[..len], key);
                let mut copied = source[..len].to_vec();
                bytewise(&mut copied, key, 0);
                assert_eq!(&fused[..prefix], &b"hdr"[..prefix]);
                assert_eq!(&fused[prefix..], &copied[..], "prefix {prefix} len {len}");
            }
        }
    }

    #[test]
    fn avx2_and_portable_appending_kernels_agree() {
        let block_key = block_key([0x9b, 0x1f, 0xe4, 0x37]);
        let source: Vec<u8> = (0..BLOCK * 40).map(|i| (i * 13 + 1) as u8).collect();
        let mut portable = BytesMut::new();
        extend_blocks_portable(&mut portable, &source, &block_key);
        let mut chosen = BytesMut::new();
        extend_blocks(&mut chosen, &source, &block_key);
        assert_eq!(portable, chosen);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            let mut avx2 = BytesMut::new();
            // SAFETY: AVX2 support was checked just above.
            unsafe { extend_blocks_avx2(&mut avx2, &source, &block_key) };
            assert_eq!(portable, avx2);
        }
    }

    #[test]
    fn masking_twice_restores_the_payload() {
        let original = b"Hello, WebSocket".to_vec();
        let mut buf = original.clone();
        apply_mask(&mut buf, [0xde, 0xad, 0xbe, 0xef]);
        assert_ne!(buf, original);
        apply_mask(&mut buf, [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(buf, original);
    }

    #[test]
    fn masking_in_pieces_equals_masking_at_once() {
        let key = [7, 77, 177, 250];
        let mut whole: Vec<u8> = (0..100u8).collect();
        let mut pieces = whole.clone();
        apply_mask(&mut whole, key);
        let (a, rest) = pieces.split_at_mut(13);
        let (b, c) = rest.split_at_mut(50);
        apply_mask_from(a, key, 0);
        apply_mask_from(b, key, 13);
        apply_mask_from(c, key, 63);
        assert_eq!(whole, pieces);
    }
}
