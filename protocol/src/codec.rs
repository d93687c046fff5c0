//! Primitive readers and writers used by the generated message code.
//!
//! `Reader` works over a `Bytes` frame so that byte and record fields are zero-copy
//! slices of it. Every length or count is checked against the bytes left before
//! anything is allocated. `Writer` collects output as a list of chunks: large byte
//! fields (record batches) are appended by reference rather than copied, so a Fetch
//! response can be written with one vectored write straight from the mapped log.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::Uuid;

/// Byte fields at least this large are kept as their own chunk instead of being copied.
const SHARE_THRESHOLD: usize = 1024;

/// Heap a decode may allocate per frame byte (on top of `HEAP_BASE`). With the frame
/// itself and the allocator's slack this keeps decoding a frame of N bytes within
/// 16·N + 1 MiB, whatever the frame says (CVE-2026-111108-style amplification: a
/// one-byte array element or a two-byte tagged field must not become a 64-byte struct
/// thousands of times over).
pub const HEAP_PER_BYTE: usize = 12;
/// Heap any decode may allocate regardless of the frame's size.
pub const HEAP_BASE: usize = 512 * 1024;
/// Most tagged fields one tagged-field section may carry. Kafka defines a handful per
/// structure; a flood of empty ones is an attack, not a client.
pub const MAX_TAGGED_FIELDS: u32 = 1024;

/// A bounds-checked cursor over a received frame.
///
/// Besides bounds, it carries a heap budget (`HEAP_PER_BYTE` × frame + `HEAP_BASE`):
/// every allocation a decode makes for what the frame announces (vectors, strings,
/// unknown tagged fields) is charged to it first and refused once it is spent.
#[derive(Debug, Clone)]
pub struct Reader {
    data: Bytes,
    pos: usize,
    budget: usize,
}

macro_rules! read_be {
    ($name:ident, $ty:ty) => {
        #[doc = concat!("Reads a big-endian `", stringify!($ty), "`.")]
        pub fn $name(&mut self) -> Result<$ty, DecodeError> {
            const N: usize = std::mem::size_of::<$ty>();
            let s = self.slice(N)?;
            let mut a = [0u8; N];
            a.copy_from_slice(s);
            Ok(<$ty>::from_be_bytes(a))
        }
    };
}

impl Reader {
    /// A reader over `data`, positioned at its start.
    pub fn new(data: Bytes) -> Self {
        let budget = data.len().saturating_mul(HEAP_PER_BYTE).saturating_add(HEAP_BASE);
        Reader { data, pos: 0, budget }
    }

    /// A reader over `data` (a slice of this reader's frame, such as a tagged field)
    /// that spends this reader's heap budget; give it back with `rejoin`.
    pub fn sub(&mut self, data: Bytes) -> Reader {
        Reader { data, pos: 0, budget: std::mem::take(&mut self.budget) }
    }

    /// Takes back the budget left by a reader made with `sub`.
    pub fn rejoin(&mut self, sub: Reader) {
        self.budget = sub.budget;
    }

    /// Heap budget left, in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Charges `bytes` of heap to the budget before they are allocated.
    pub fn charge(&mut self, bytes: usize) -> Result<(), DecodeError> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(DecodeError::Invalid { offset: self.pos, what: "decoding would exceed the heap budget" }),
        }
    }

    /// A vector with room for exactly `n` elements, charged to the budget first (so it
    /// never grows by doubling past what was charged).
    pub fn alloc_vec<T>(&mut self, n: usize) -> Result<Vec<T>, DecodeError> {
        self.charge(n.saturating_mul(std::mem::size_of::<T>()))?;
        Ok(Vec::with_capacity(n))
    }

    /// Reads a tagged-field count, capped at `MAX_TAGGED_FIELDS`, and charges room for
    /// that many preserved unknown fields.
    pub fn tagged_count(&mut self) -> Result<u32, DecodeError> {
        let n = self.uvarint()?;
        if n > MAX_TAGGED_FIELDS {
            return Err(self.invalid("too many tagged fields"));
        }
        // Each field takes at least two bytes (tag, size).
        if n as usize > self.remaining() / 2 {
            return Err(DecodeError::Truncated { need: n as usize * 2, have: self.remaining() });
        }
        self.charge((n as usize).saturating_mul(std::mem::size_of::<(u32, Bytes)>()))?;
        Ok(n)
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// An `Invalid` error at the current position.
    pub fn invalid(&self, what: &'static str) -> DecodeError {
        DecodeError::Invalid { offset: self.pos, what }
    }

    fn slice(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let have = self.remaining();
        if n > have {
            return Err(DecodeError::Truncated { need: n, have });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Takes the next `n` bytes as a zero-copy slice.
    pub fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let have = self.remaining();
        if n > have {
            return Err(DecodeError::Truncated { need: n, have });
        }
        let b = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// Everything not yet consumed.
    pub fn rest(&mut self) -> Bytes {
        let b = self.data.slice(self.pos..);
        self.pos = self.data.len();
        b
    }

    read_be!(i8, i8);
    read_be!(i16, i16);
    read_be!(i32, i32);
    read_be!(i64, i64);
    read_be!(u16, u16);
    read_be!(u32, u32);
    read_be!(f64, f64);

    /// Reads a boolean (any non-zero byte is true, as in Kafka).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.i8()? != 0)
    }

    /// Reads a 16-byte UUID.
    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        let s = self.slice(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(s);
        Ok(Uuid(a))
    }

    /// Reads an unsigned LEB128 varint of at most 5 bytes.
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.slice(1)?[0];
            if i == 4 && b > 0x0f {
                return Err(self.invalid("unsigned varint overflows 32 bits"));
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.invalid("unsigned varint longer than 5 bytes"))
    }

    /// Reads a length prefix: int16/int32 in classic versions, varint(len+1) in flexible ones.
    /// `None` means null. The length is checked against the bytes left.
    fn length(&mut self, flexible: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
        let len: i64 = if flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if len < -1 {
            return Err(self.invalid("negative length"));
        }
        if len == -1 {
            return Ok(None);
        }
        let len = len as usize;
        if len > self.remaining() {
            return Err(DecodeError::Truncated { need: len, have: self.remaining() });
        }
        Ok(Some(len))
    }

    /// Reads a nullable string.
    pub fn nullable_string(&mut self, flexible: bool) -> Result<Option<String>, DecodeError> {
        match self.length(flexible, false)? {
            None => Ok(None),
            Some(n) => {
                self.charge(n)?;
                let at = self.pos;
                let s = self.slice(n)?;
                match std::str::from_utf8(s) {
                    Ok(s) => Ok(Some(s.to_owned())),
                    Err(_) => Err(DecodeError::Invalid { offset: at, what: "string is not UTF-8" }),
                }
            }
        }
    }

    /// Reads a non-null string.
    pub fn string(&mut self, flexible: bool) -> Result<String, DecodeError> {
        self.nullable_string(flexible)?.ok_or_else(|| self.invalid("null string in a non-nullable field"))
    }

    /// Reads nullable bytes (int32 length in classic versions).
    pub fn nullable_bytes(&mut self, flexible: bool) -> Result<Option<Bytes>, DecodeError> {
        match self.length(flexible, true)? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?)),
        }
    }

    /// Reads non-null bytes.
    pub fn bytes(&mut self, flexible: bool) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(flexible)?.ok_or_else(|| self.invalid("null bytes in a non-nullable field"))
    }

    /// Reads a record set: bytes as far as the wire is concerned, kept as a slice.
    pub fn nullable_records(&mut self, flexible: bool) -> Result<Option<Bytes>, DecodeError> {
        self.nullable_bytes(flexible)
    }

    /// Reads an array count. Each element takes at least one byte, so a count larger than
    /// the bytes left is rejected before any allocation.
    pub fn array_len(&mut self, flexible: bool) -> Result<Option<usize>, DecodeError> {
        let n: i64 = if flexible { i64::from(self.uvarint()?) - 1 } else { i64::from(self.i32()?) };
        if n < -1 {
            return Err(self.invalid("negative array count"));
        }
        if n == -1 {
            return Ok(None);
        }
        let n = n as usize;
        if n > self.remaining() {
            return Err(DecodeError::Truncated { need: n, have: self.remaining() });
        }
        Ok(Some(n))
    }
}

/// Accumulates encoded output as a list of chunks.
#[derive(Debug, Default)]
pub struct Writer {
    chunks: Vec<Bytes>,
    cur: BytesMut,
    len: usize,
}

macro_rules! write_be {
    ($name:ident, $ty:ty) => {
        #[doc = concat!("Writes a big-endian `", stringify!($ty), "`.")]
        pub fn $name(&mut self, v: $ty) {
            self.put(&v.to_be_bytes());
        }
    };
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// Total bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn put(&mut self, b: &[u8]) {
        self.cur.put_slice(b);
        self.len += b.len();
    }

    /// Appends `b`; large slices are kept by reference instead of copied.
    pub fn put_shared(&mut self, b: &Bytes) {
        if b.len() < SHARE_THRESHOLD {
            self.put(b);
            return;
        }
        if !self.cur.is_empty() {
            self.chunks.push(self.cur.split().freeze());
        }
        self.chunks.push(b.clone());
        self.len += b.len();
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, b: &[u8]) {
        self.put(b);
    }

    write_be!(i8, i8);
    write_be!(i16, i16);
    write_be!(i32, i32);
    write_be!(i64, i64);
    write_be!(u16, u16);
    write_be!(u32, u32);
    write_be!(f64, f64);

    /// Writes a boolean as one byte.
    pub fn bool(&mut self, v: bool) {
        self.put(&[u8::from(v)]);
    }

    /// Writes a UUID's 16 bytes.
    pub fn uuid(&mut self, v: Uuid) {
        self.put(&v.0);
    }

    /// Writes an unsigned LEB128 varint.
    pub fn uvarint(&mut self, mut v: u32) {
        let mut buf = [0u8; 5];
        let mut i = 0;
        while v >= 0x80 {
            buf[i] = (v as u8) | 0x80;
            v >>= 7;
            i += 1;
        }
        buf[i] = v as u8;
        self.put(&buf[..=i]);
    }

    fn length(&mut self, len: usize, flexible: bool, wide: bool) -> Result<(), EncodeError> {
        if flexible {
            let l = u32::try_from(len).ok().and_then(|l| l.checked_add(1)).ok_or(EncodeError::TooLong { len })?;
            self.uvarint(l);
        } else if wide {
            self.i32(i32::try_from(len).map_err(|_| EncodeError::TooLong { len })?);
        } else {
            self.i16(i16::try_from(len).map_err(|_| EncodeError::TooLong { len })?);
        }
        Ok(())
    }

    /// Writes a non-null string.
    pub fn string(&mut self, s: &str, flexible: bool) -> Result<(), EncodeError> {
        self.length(s.len(), flexible, false)?;
        self.put(s.as_bytes());
        Ok(())
    }

    /// Writes a null string.
    pub fn null_string(&mut self, flexible: bool) {
        if flexible {
            self.uvarint(0)
        } else {
            self.i16(-1)
        }
    }

    /// Writes non-null bytes.
    pub fn bytes(&mut self, b: &Bytes, flexible: bool) -> Result<(), EncodeError> {
        self.length(b.len(), flexible, true)?;
        self.put_shared(b);
        Ok(())
    }

    /// Writes null bytes.
    pub fn null_bytes(&mut self, flexible: bool) {
        if flexible {
            self.uvarint(0)
        } else {
            self.i32(-1)
        }
    }

    /// Writes a record set (by reference when large).
    pub fn records(&mut self, b: &Bytes, flexible: bool) -> Result<(), EncodeError> {
        self.bytes(b, flexible)
    }

    /// Writes a null record set.
    pub fn null_records(&mut self, flexible: bool) {
        self.null_bytes(flexible)
    }

    /// Writes an array count.
    pub fn array_len(&mut self, n: usize, flexible: bool) -> Result<(), EncodeError> {
        self.length(n, flexible, true)
    }

    /// Writes a null array.
    pub fn null_array(&mut self, flexible: bool) {
        self.null_bytes(flexible)
    }

    /// Writes a tagged-field section: known fields and preserved unknown ones, by ascending tag.
    pub fn tagged_fields(&mut self, mut known: Vec<(u32, Bytes)>, unknown: &[(u32, Bytes)]) -> Result<(), EncodeError> {
        known.extend(unknown.iter().cloned());
        known.sort_by_key(|(t, _)| *t);
        self.uvarint(u32::try_from(known.len()).map_err(|_| EncodeError::TooLong { len: known.len() })?);
        for (tag, b) in &known {
            self.uvarint(*tag);
            self.uvarint(u32::try_from(b.len()).map_err(|_| EncodeError::TooLong { len: b.len() })?);
            self.put_shared(b);
        }
        Ok(())
    }

    /// The output as chunks, for a vectored write.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        if !self.cur.is_empty() {
            self.chunks.push(self.cur.freeze());
        }
        self.chunks
    }

    /// The output as one contiguous buffer (copies when there is more than one chunk).
    pub fn into_bytes(self) -> Bytes {
        let mut chunks = self.into_chunks();
        match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().unwrap_or_default(),
            _ => {
                let mut b = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
                for c in &chunks {
                    b.put_slice(c);
                }
                b.freeze()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trips_at_the_boundaries() {
        for v in [0u32, 1, 127, 128, 16383, 16384, u32::MAX] {
            let mut w = Writer::new();
            w.uvarint(v);
            let mut r = Reader::new(w.into_bytes());
            assert_eq!(r.uvarint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn overlong_uvarint_is_rejected() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
        assert!(r.uvarint().is_err());
    }

    #[test]
    fn absurd_array_count_fails_before_allocating() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
        assert_eq!(r.array_len(false), Err(DecodeError::Truncated { need: i32::MAX as usize, have: 4 }));
    }

    #[test]
    fn large_byte_fields_are_shared_not_copied() {
        let big = Bytes::from(vec![7u8; 4096]);
        let mut w = Writer::new();
        w.i32(1);
        w.bytes(&big, false).unwrap();
        w.i16(2);
        let chunks = w.into_chunks();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), big.as_ptr());
    }
}
