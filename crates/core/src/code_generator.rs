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
const ROUNDS: usize = 6;
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

/// The state of SipHash-1-3 under `(k0, k1)` after the words `a` and `b`: a position's Feistel
/// round hashes (tweak, round, half), and the first two are the same for every code of a block,
/// so a block's six states are made once and each code's round hashes only its own word.
fn absorbed(k0: u64, k1: u64, a: u64, b: u64) -> Sip {
    let mut s = Sip([
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ]);
    s.compress(a);
    s.compress(b);
    s
}

/// SipHash's four state words.
#[derive(Clone, Copy)]
struct Sip([u64; 4]);

impl Sip {
    /// One SipRound.
    #[inline(always)]
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.0;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    /// Takes in the word `m` (one compression round: the "1" of SipHash-1-3).
    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.0[3] ^= m;
        self.round();
        self.0[0] ^= m;
    }

    /// The hash of what was taken in and then the word `c`: three words in all, so the length
    /// (24 bytes) goes in the last word's top byte with no tail, then three final rounds.
    #[inline(always)]
    fn finish(mut self, c: u64) -> u64 {
        self.compress(c);
        self.compress(24 << 56);
        self.0[2] ^= 0xff;
        self.round();
        self.round();
        self.round();
        let [v0, v1, v2, v3] = self.0;
        v0 ^ v1 ^ v2 ^ v3
    }
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
        self.with_block(batch_id, block, |block| block.prefix)
    }

    /// `f` of the block `(batch, block)`: its prefix and its positions' round states. The last
    /// block made on this thread is kept, by these keys: a rush issues from one block of one
    /// batch, so the prefix's six rounds and the six round states are made again only when the
    /// block changes, and a code costs its own six round hashes of one word each.
    fn with_block<T>(&self, batch_id: i64, block: u32, f: impl FnOnce(&Block) -> T) -> T {
        debug_assert!((0..=MAX_BATCH_ID).contains(&batch_id) && block < (1 << BLOCK_NUMBER_BITS));
        let input = ((batch_id as u64) << BLOCK_NUMBER_BITS) | u64::from(block);
        thread_local! {
            static LAST: std::cell::RefCell<Option<Block>> = const { std::cell::RefCell::new(None) };
        }
        LAST.with_borrow_mut(|last| match last {
            Some(block) if (block.k0, block.k1, block.input) == (self.k0, self.k1, input) => f(block),
            _ => {
                let prefix = self.permute(input, 16, u64::MAX) as u32;
                f(last.insert(Block {
                    k0: self.k0,
                    k1: self.k1,
                    input,
                    prefix,
                    rounds: self.rounds(u64::from(prefix)),
                }))
            }
        })
    }

    /// The code at position `seq` of a batch.
    pub fn code(&self, batch_id: i64, seq: u32) -> Code {
        let mut out = [0u8; CODE_LEN];
        self.with_block(batch_id, seq >> BLOCK_BITS, |block| {
            encode(block.prefix, block.position(seq), &mut out);
        });
        Code(out)
    }

    /// The codes at positions `seqs` of a batch, all in one block, sorted by code: the order in
    /// which they enter the unique index with the least work. Each comes with its position.
    pub fn sorted_block(&self, batch_id: i64, seqs: Range<u32>) -> Vec<(u32, [u8; CODE_LEN])> {
        let block = seqs.start >> BLOCK_BITS;
        assert!(
            seqs.is_empty() || (seqs.end - 1) >> BLOCK_BITS == block,
            "positions {seqs:?} span more than one block"
        );
        self.with_block(batch_id, block, |block| {
            // Same prefix, fixed width, ASCII-ordered alphabet: sorting the numbers sorts the text.
            let mut lows: Vec<(u64, u32)> = seqs.map(|s| (block.position(s), s)).collect();
            lows.sort_unstable();
            lows.into_iter()
                .map(|(low, seq)| {
                    let mut out = [0u8; CODE_LEN];
                    encode(block.prefix, low, &mut out);
                    (seq, out)
                })
                .collect()
        })
    }

    /// The round states of a Feistel network tweaked by `tweak`: each round's hash input
    /// starts with the tweak and the round's number (see [`absorbed`]).
    fn rounds(&self, tweak: u64) -> [Sip; ROUNDS] {
        std::array::from_fn(|round| absorbed(self.k0, self.k1, tweak, round as u64))
    }

    /// Feistel network over `2 * half` bits.
    fn permute(&self, x: u64, half: u32, tweak: u64) -> u64 {
        feistel(&self.rounds(tweak), x, half)
    }
}

/// A block's prefix and the round states of its positions' permutation, under the keys `k0`,
/// `k1` (the prefix input is `input`).
struct Block {
    k0: u64,
    k1: u64,
    input: u64,
    prefix: u32,
    rounds: [Sip; ROUNDS],
}

impl Block {
    /// The 48-bit position part of the code at `seq` in this block.
    fn position(&self, seq: u32) -> u64 {
        feistel(&self.rounds, u64::from(seq & (BLOCK_SIZE - 1)), 24)
    }
}

/// The balanced Feistel network over `2 * half` bits whose rounds hash from `rounds`.
fn feistel(rounds: &[Sip; ROUNDS], x: u64, half: u32) -> u64 {
    let mask = (1u64 << half) - 1;
    let (mut l, mut r) = ((x >> half) & mask, x & mask);
    for round in rounds {
        let f = round.finish(r) & mask;
        (l, r) = (r, l ^ f);
    }
    (l << half) | r
}

/// A code: [`CODE_LEN`] characters of the alphabet, held without an allocation of its own (an
/// issued coupon's answer writes it straight into its text).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code([u8; CODE_LEN]);

impl Code {
    /// The code's text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("the alphabet is ASCII")
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<Code> for String {
    fn from(code: Code) -> Self {
        code.as_str().to_owned()
    }
}

/// Writes the 80-bit value `prefix ‖ low` as 16 characters and the check character. The value
/// is read ten bits (two characters) at a time from two 40-bit halves, in machine words, through
/// [`PAIRS`] (a character at a time, with a 128-bit shift each, cost a coupon's answer about a
/// hundred instructions more).
fn encode(prefix: u32, low: u64, out: &mut [u8; CODE_LEN]) {
    const HALF: u32 = 40;
    let halves = [
        (u64::from(prefix) << (48 - HALF)) | (low >> HALF),
        low & ((1 << HALF) - 1),
    ];
    // Character i weighs 2i + 1 in the check: a pair k (characters 2k and 2k + 1) adds
    // 4k × (its two digits' sum) + its own weighted sum. The total stays below 32 × 256, so it
    // is reduced once at the end.
    let mut check = 0u32;
    for (h, half) in halves.into_iter().enumerate() {
        for j in 0..4 {
            let k = 4 * h + j;
            let pair = &PAIRS[((half >> (10 * (3 - j))) & 1023) as usize];
            out[2 * k..2 * k + 2].copy_from_slice(&pair.text);
            check += 4 * k as u32 * u32::from(pair.sum) + u32::from(pair.weighted);
        }
    }
    out[16] = ALPHABET[(check & 31) as usize];
}

/// Two digits `a`, `b` (ten bits, `a` first) as text, with what they add to the check
/// character before their position's weight: `a + b` and `a + 3b`.
#[derive(Clone, Copy)]
struct Pair {
    text: [u8; 2],
    sum: u8,
    weighted: u8,
}

/// Every [`Pair`], by its ten bits.
static PAIRS: [Pair; 1024] = {
    let mut pairs = [Pair {
        text: [0; 2],
        sum: 0,
        weighted: 0,
    }; 1024];
    let mut bits = 0;
    while bits < 1024 {
        let (a, b) = (bits >> 5, bits & 31);
        pairs[bits] = Pair {
            text: [ALPHABET[a], ALPHABET[b]],
            sum: (a + b) as u8,
            weighted: (a + 3 * b) as u8,
        };
        bits += 1;
    }
    pairs
};

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

    /// A Feistel round's hash of its three words, as the generator makes it.
    fn sip(k0: u64, k1: u64, [a, b, c]: [u64; 3]) -> u64 {
        absorbed(k0, k1, a, b).finish(c)
    }

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
    fn a_code_never_changes() {
        // Codes issued already, and the ones jobs wrote into `coupon_codes`, must be made again
        // exactly: these are what the generator made before its rounds were kept per block.
        let g = CodeGenerator::new("golden-secret");
        for (batch, seq, code) in [
            (1, 0, "NMNXWFZN489Q7MPNJ"),
            (1, 1, "NMNXWFSRQW3D2YJ8P"),
            (1, 262_143, "NMNXWFZER7WA6SXQ5"),
            (1, 262_144, "GYKPZVNBFDNYS55X6"),
            (42, 7, "9YJ3M844GVEFW68EP"),
            (42, 9_999_999, "8G1T4664F26HAW04Q"),
            (MAX_BATCH_ID, 12_345, "1RR67GS2NEYZCW5M8"),
        ] {
            assert_eq!(g.code(batch, seq).as_str(), code, "batch {batch} seq {seq}");
            let block = seq >> BLOCK_BITS << BLOCK_BITS;
            let sorted = g.sorted_block(batch, block..block + BLOCK_SIZE);
            assert!(sorted.iter().any(|(s, c)| *s == seq && c == code.as_bytes()));
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
        let codes: HashSet<Code> = (0..BLOCK_SIZE).map(|s| g.code(7, s)).collect();
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
        let (x, y) = (g.code(5, 100).to_string(), g.code(5, 101).to_string());
        assert_eq!(x[..6], y[..6]);
        let differing = x[6..16]
            .bytes()
            .zip(y[6..16].bytes())
            .filter(|(a, b)| a != b)
            .count();
        assert!(differing >= 5, "{x} vs {y}");
        assert_ne!(
            g.code(5, 100).as_str()[..6],
            g.code(5, BLOCK_SIZE + 100).as_str()[..6]
        );
    }

    #[test]
    fn a_sorted_block_matches_single_codes_in_code_order() {
        let g = CodeGenerator::new("s");
        let block = g.sorted_block(11, BLOCK_SIZE..BLOCK_SIZE + 1_000);
        assert_eq!(block.len(), 1_000);
        assert!(block.windows(2).all(|w| w[0].1 < w[1].1));
        for (seq, code) in block.iter().step_by(97) {
            assert_eq!(std::str::from_utf8(code).unwrap(), g.code(11, *seq).as_str());
        }
    }

    #[test]
    fn check_character_catches_typos() {
        let g = CodeGenerator::new("s");
        let code = g.code(9, 12345).to_string();
        assert!(is_well_formed(&code));
        let mut typo = code.clone().into_bytes();
        typo[3] = if typo[3] == b'A' { b'B' } else { b'A' };
        assert!(!is_well_formed(std::str::from_utf8(&typo).unwrap()));
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&code.to_lowercase()));
    }
}
