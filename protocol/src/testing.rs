//! Deterministic random values for property tests (feature `testing`).

use bytes::Bytes;

use crate::Uuid;

/// A small xorshift generator: reproducible from a seed, no dependencies.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Mostly small numbers, sometimes extreme ones, to hit varint and sign boundaries.
    fn int(&mut self) -> i64 {
        match self.below(4) {
            0 => self.below(3) as i64 - 1,
            1 => self.below(300) as i64,
            _ => self.next_u64() as i64,
        }
    }

    /// A random bool.
    pub fn bool(&mut self) -> bool {
        self.below(2) == 1
    }
    /// A random i8.
    pub fn i8(&mut self) -> i8 {
        self.int() as i8
    }
    /// A random i16.
    pub fn i16(&mut self) -> i16 {
        self.int() as i16
    }
    /// A random i32.
    pub fn i32(&mut self) -> i32 {
        self.int() as i32
    }
    /// A random i64.
    pub fn i64(&mut self) -> i64 {
        self.int()
    }
    /// A random u16.
    pub fn u16(&mut self) -> u16 {
        self.int() as u16
    }
    /// A random u32.
    pub fn u32(&mut self) -> u32 {
        self.int() as u32
    }
    /// A random finite f64.
    pub fn f64(&mut self) -> f64 {
        self.int() as f64 / 8.0
    }
    /// A random UUID.
    pub fn uuid(&mut self) -> Uuid {
        let mut a = [0u8; 16];
        for b in &mut a {
            *b = self.next_u64() as u8;
        }
        Uuid(a)
    }
    /// A length: mostly short, sometimes past the one-byte varint limit, occasionally
    /// past the writer's 1 KiB shared-chunk threshold.
    fn len(&mut self) -> u64 {
        match self.below(16) {
            0 => 128 + self.below(200),
            1 => 1024 + self.below(2048),
            _ => self.below(17),
        }
    }
    /// A random string, sometimes with multi-byte characters.
    pub fn string(&mut self) -> String {
        const CHARS: &[char] = &['a', 'z', 'K', '0', '-', '_', '.', ' ', 'é', 'ß', '火'];
        let n = self.len().min(400);
        (0..n).map(|_| CHARS[self.below(CHARS.len() as u64) as usize]).collect()
    }
    /// A random byte string.
    pub fn bytes(&mut self) -> Bytes {
        let n = self.len();
        (0..n).map(|_| self.next_u64() as u8).collect::<Vec<u8>>().into()
    }
    /// Opaque record bytes (the message codec never looks inside).
    pub fn records(&mut self) -> Bytes {
        self.bytes()
    }
}
