//! Coupon codes: unguessable, unique by construction, cheap to index.
//!
//! A code is a keyed permutation of `(batch id, seq)`, so two positions never share a code and no
//! retry loop is needed; a crashed job redoes a chunk and gets the same codes again. The 80-bit
//! value has two parts:
//!
//! * **block prefix** (32 bits): a permutation of `(batch id, block)`, where a block is
//!   [`BLOCK_SIZE`] consecutive positions of one batch;
//! * **position** (48 bits): a permutation of the position inside the block (18 bits), keyed and
//!   tweaked by the prefix.
//!
//! Codes of one block share their first six characters, so a block sorted by code lands in one
//! narrow range of the unique index: the job writes a block as one COPY and touches few index
//! pages (a third faster than fully random codes on 10M rows). Guessing stays hopeless: without a
//! code, a try hits with probability (codes issued) / 2^80; knowing one code of a block, another
//! of the same block is hit with probability 2^18 / 2^48 = 2^-30 per try.
//!
//! Both permutations are balanced Feistel networks with [`ROUNDS`] rounds whose round function is
//! SipHash-1-3 under a key derived from `CODE_SECRET`. The value is written as 16 Crockford
//! base32 characters (no I, L, O, U) plus one check character. The alphabet is in ASCII order, so
//! the text sorts like the number.
//!
//! Limits: batch ids below 2^26 and at most 2^6 blocks (16.7M codes) per batch; both far above
//! what the schema allows for a batch (10M).

use std::{hash::Hasher, ops::Range};

use siphasher::sip::SipHasher13;

/// Positions per block: the unit of generation, of a COPY and of a progress step.
pub const BLOCK_SIZE: u32 = 1 << BLOCK_BITS;
const BLOCK_BITS: u32 = 18;
/// Bits of the block number inside the prefix input.
const BLOCK_NUMBER_BITS: u32 = 6;
/// Largest batch id a code can carry.
pub const MAX_BATCH_ID: i64 = (1 << (32 - BLOCK_NUMBER_BITS)) - 1;
/// Feistel rounds; four already give a strong pseudo-random permutation (Luby–Rackoff).
const ROUNDS: u64 = 6;
/// Characters of a code: 16 for the value, one check character.
pub const CODE_LEN: usize = 17;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Makes the codes of a secret.
#[derive(Clone)]
pub struct CodeGenerator {
    k0: u64,
    k1: u64,
    fingerprint: String,
}

impl std::fmt::Debug for CodeGenerator {
    // The keys never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeGenerator")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// SipHash-1-3 of three words under `(k0, k1)`, exactly as [`SipHasher13`] hashes them written
/// with `write_u64`: the round function of every Feistel round, written out for its one length
/// (a coupon's answer makes six to twelve of them; through the generic hasher they were a
/// twentieth of an issue's instructions).
fn sip(k0: u64, k1: u64, words: [u64; 3]) -> u64 {
    let (mut v0, mut v1, mut v2, mut v3) = (
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    );
    macro_rules! round {
        () => {
            v0 = v0.wrapping_add(v1);
            v1 = v1.rotate_left(13) ^ v0;
            v0 = v0.rotate_left(32);
            v2 = v2.wrapping_add(v3);
            v3 = v3.rotate_left(16) ^ v2;
            v0 = v0.wrapping_add(v3);
            v3 = v3.rotate_left(21) ^ v0;
            v2 = v2.wrapping_add(v1);
            v1 = v1.rotate_left(17) ^ v2;
            v2 = v2.rotate_left(32);
        };
    }
    // Three words, then the length (24 bytes) in the last word's top byte, no tail.
    let [a, b, c] = words;
    for m in [a, b, c, 24 << 56] {
        v3 ^= m;
        round!();
        v0 ^= m;
    }
    v2 ^= 0xff;
    round!();
    round!();
    round!();
    v0 ^ v1 ^ v2 ^ v3
}

fn sip_bytes(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(k0, k1);
    h.write(bytes);
    h.finish()
}

impl CodeGenerator {
    /// A generator keyed by `secret`.
    pub fn new(secret: &str) -> Self {
        // Fixed, distinct domain keys turn the secret into the round key and a fingerprint that
        // reveals nothing about the round key.
        let k0 = sip_bytes(0x636f_6465_7330, 1, secret.as_bytes());
        let k1 = sip_bytes(0x636f_6465_7331, 2, secret.as_bytes());
        let fp = sip_bytes(0x6669_6e67_6572, 3, secret.as_bytes());
        Self {
            k0,
            k1,
            fingerprint: format!("{fp:016x}"),
        }
    }

    /// The waiting room's keys (passes, shuffle seeds), derived from the same secret under
    /// domains of their own.
    pub fn admission_keys(&self) -> crate::admission::AdmissionKeys {
        crate::admission::AdmissionKeys::derived(self.k0, self.k1)
    }

    /// Names the secret without revealing it; a job records it so that a worker with another
    /// secret never continues it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The block prefix of `(batch, block)`.
    pub fn block_prefix(&self, batch_id: i64, block: u32) -> u32 {
        debug_assert!((0..=MAX_BATCH_ID).contains(&batch_id) && block < (1 << BLOCK_NUMBER_BITS));
        let input = ((batch_id as u64) << BLOCK_NUMBER_BITS) | u64::from(block);
        // The last one made on this thread, by these keys: a rush issues from one block of one
        // batch, so the prefix's six rounds are made again only when the block changes.
        thread_local! {
            static LAST: std::cell::Cell<Option<(u64, u64, u64, u32)>> = const { std::cell::Cell::new(None) };
        }
        if let Some((k0, k1, last, prefix)) = LAST.get()
            && (k0, k1, last) == (self.k0, self.k1, input)
        {
            return prefix;
        }
        let prefix = self.permute(input, 16, u64::MAX) as u32;
        LAST.set(Some((self.k0, self.k1, input, prefix)));
        prefix
    }

    /// The code at position `seq` of a batch.
    pub fn code(&self, batch_id: i64, seq: u32) -> String {
        let prefix = self.block_prefix(batch_id, seq >> BLOCK_BITS);
        let mut out = [0u8; CODE_LEN];
        encode(prefix, self.position(prefix, seq), &mut out);
        String::from_utf8(out.to_vec()).expect("the alphabet is ASCII")
    }

    /// The codes at positions `seqs` of a batch, all in one block, sorted by code: the order in
    /// which they enter the unique index with the least work. Each comes with its position.
    pub fn sorted_block(&self, batch_id: i64, seqs: Range<u32>) -> Vec<(u32, [u8; CODE_LEN])> {
        let block = seqs.start >> BLOCK_BITS;
        assert!(
            seqs.is_empty() || (seqs.end - 1) >> BLOCK_BITS == block,
            "positions {seqs:?} span more than one block"
        );
        let prefix = self.block_prefix(batch_id, block);
        // Same prefix, fixed width, ASCII-ordered alphabet: sorting the numbers sorts the text.
        let mut lows: Vec<(u64, u32)> = seqs.map(|s| (self.position(prefix, s), s)).collect();
        lows.sort_unstable();
        lows.into_iter()
            .map(|(low, seq)| {
                let mut out = [0u8; CODE_LEN];
                encode(prefix, low, &mut out);
                (seq, out)
            })
            .collect()
    }

    /// The 48-bit position part of the code at `seq` in the block with `prefix`.
    fn position(&self, prefix: u32, seq: u32) -> u64 {
        self.permute(u64::from(seq & (BLOCK_SIZE - 1)), 24, u64::from(prefix))
    }
    /// Feistel network over `2 * half` bits.
    fn permute(&self, x: u64, half: u32, tweak: u64) -> u64 {
        let mask = (1u64 << half) - 1;
        let (mut l, mut r) = ((x >> half) & mask, x & mask);
        for round in 0..ROUNDS {
            let f = sip(self.k0, self.k1, [tweak, round, r]) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << half) | r
    }
}

/// Writes the 80-bit value `prefix ‖ low` as 16 characters and the check character.
fn encode(prefix: u32, low: u64, out: &mut [u8; CODE_LEN]) {
    let value = (u128::from(prefix) << 48) | u128::from(low);
    let mut check = 0u32;
    for (i, slot) in out[..16].iter_mut().enumerate() {
        let digit = ((value >> (5 * (15 - i))) & 31) as u32;
        *slot = ALPHABET[digit as usize];
        check = (check + digit * (2 * i as u32 + 1)) & 31;
    }
    out[16] = ALPHABET[check as usize];
}

/// Whether `code` has the shape and check character of a generated code (upper case).
pub fn is_well_formed(code: &str) -> bool {
    let bytes = code.as_bytes();
    if bytes.len() != CODE_LEN {
        return false;
    }
    let digit = |b: u8| ALPHABET.iter().position(|&a| a == b).map(|d| d as u32);
    let mut check = 0u32;
    for (i, &b) in bytes[..16].iter().enumerate() {
        let Some(d) = digit(b) else { return false };
        check = (check + d * (2 * i as u32 + 1)) & 31;
    }
    digit(bytes[16]) == Some(check)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_round_function_is_siphash_1_3() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..1_000 {
            x = x.rotate_left(7).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x1234_5678;
            let words = [x, x >> 3, x.wrapping_mul(31)];
            let (k0, k1) = (x ^ 0xaaaa, x.rotate_right(11));
            let mut h = SipHasher13::new_with_keys(k0, k1);
            for w in words {
                h.write_u64(w);
            }
            assert_eq!(sip(k0, k1, words), h.finish());
        }
    }

    #[test]
    fn a_remembered_block_prefix_is_the_one_of_its_keys() {
        let (a, b) = (CodeGenerator::new("a"), CodeGenerator::new("b"));
        for _ in 0..2 {
            for (batch, block) in [(1, 0), (1, 1), (2, 0)] {
                let input = ((batch as u64) << BLOCK_NUMBER_BITS) | u64::from(block);
                assert_eq!(
                    a.block_prefix(batch, block),
                    a.permute(input, 16, u64::MAX) as u32
                );
                assert_eq!(
                    b.block_prefix(batch, block),
                    b.permute(input, 16, u64::MAX) as u32
                );
            }
        }
    }

    #[test]
    fn codes_are_unique_across_blocks_and_batches() {
        let g = CodeGenerator::new("test-secret");
        let mut seen = HashSet::new();
        for batch in [1, 2, MAX_BATCH_ID] {
            for seq in (0..3 * BLOCK_SIZE)
                .step_by(97)
                .chain(BLOCK_SIZE - 3..BLOCK_SIZE + 3)
            {
                assert!(seen.insert(g.code(batch, seq)), "batch {batch} seq {seq}");
            }
        }
    }

    #[test]
    fn a_whole_block_is_a_permutation() {
        let g = CodeGenerator::new("s");
        let codes: HashSet<String> = (0..BLOCK_SIZE).map(|s| g.code(7, s)).collect();
        assert_eq!(codes.len(), BLOCK_SIZE as usize);
    }

    #[test]
    fn codes_depend_on_the_secret_and_are_stable() {
        let a = CodeGenerator::new("one");
        let b = CodeGenerator::new("two");
        assert_eq!(a.code(3, 10), CodeGenerator::new("one").code(3, 10));
        assert_ne!(a.code(3, 10), b.code(3, 10));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn codes_of_a_block_share_a_prefix_and_neighbours_look_unrelated() {
        let g = CodeGenerator::new("s");
        let (x, y) = (g.code(5, 100), g.code(5, 101));
        assert_eq!(x[..6], y[..6]);
        let differing = x[6..16]
            .bytes()
            .zip(y[6..16].bytes())
            .filter(|(a, b)| a != b)
            .count();
        assert!(differing >= 5, "{x} vs {y}");
        assert_ne!(g.code(5, 100)[..6], g.code(5, BLOCK_SIZE + 100)[..6]);
    }

    #[test]
    fn a_sorted_block_matches_single_codes_in_code_order() {
        let g = CodeGenerator::new("s");
        let block = g.sorted_block(11, BLOCK_SIZE..BLOCK_SIZE + 1_000);
        assert_eq!(block.len(), 1_000);
        assert!(block.windows(2).all(|w| w[0].1 < w[1].1));
        for (seq, code) in block.iter().step_by(97) {
            assert_eq!(std::str::from_utf8(code).unwrap(), g.code(11, *seq));
        }
    }

    #[test]
    fn check_character_catches_typos() {
        let g = CodeGenerator::new("s");
        let code = g.code(9, 12345);
        assert!(is_well_formed(&code));
        let mut typo = code.clone().into_bytes();
        typo[3] = if typo[3] == b'A' { b'B' } else { b'A' };
        assert!(!is_well_formed(std::str::from_utf8(&typo).unwrap()));
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&code.to_lowercase()));
    }
}
