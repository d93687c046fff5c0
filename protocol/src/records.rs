//! Record batches (magic v2): header parsing, CRC-32C, offset patching,
//! record decoding and a small batch builder. No I/O.
//!
//! Everything here treats its input as untrusted: lengths and counts are
//! checked against the bytes actually present before anything is read or
//! allocated, and no function panics on any input.
//!
//! Batch layout (all integers big-endian, 61-byte header):
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordsCount i32 | records...
//! ```
//!
//! `batchLength` counts the bytes after itself (total size - 12). The CRC is
//! CRC-32C (Castagnoli) over the bytes from `attributes` to the end of the
//! batch, so `baseOffset`, `batchLength` and `partitionLeaderEpoch` can be
//! patched by the broker without recomputing it.

use bytes::{BufMut, Bytes, BytesMut};

/// Size of the fixed batch header, up to and including `recordsCount`.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before the part counted by `batchLength` (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// The only record batch format Strom reads or writes.
pub const MAGIC_V2: i8 = 2;
/// Smallest valid `batchLength`: a header with no records.
pub const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;

/// Byte offset of `baseOffset` (i64).
pub const BASE_OFFSET_OFFSET: usize = 0;
/// Byte offset of `batchLength` (i32).
pub const BATCH_LENGTH_OFFSET: usize = 8;
/// Byte offset of `partitionLeaderEpoch` (i32).
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
/// Byte offset of `magic` (i8).
pub const MAGIC_OFFSET: usize = 16;
/// Byte offset of `crc` (u32).
pub const CRC_OFFSET: usize = 17;
/// Byte offset of `attributes` (i16); the CRC covers from here to the end.
pub const ATTRIBUTES_OFFSET: usize = 21;
/// Byte offset of `lastOffsetDelta` (i32).
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
/// Byte offset of `baseTimestamp` (i64).
pub const BASE_TIMESTAMP_OFFSET: usize = 27;
/// Byte offset of `maxTimestamp` (i64).
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Byte offset of `producerId` (i64).
pub const PRODUCER_ID_OFFSET: usize = 43;
/// Byte offset of `producerEpoch` (i16).
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
/// Byte offset of `baseSequence` (i32).
pub const BASE_SEQUENCE_OFFSET: usize = 53;
/// Byte offset of `recordsCount` (i32).
pub const RECORDS_COUNT_OFFSET: usize = 57;

/// Bytes needed to read `batchLength` and `magic`.
const LENGTH_AND_MAGIC_LEN: usize = MAGIC_OFFSET + 1;
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
/// Smallest encoded record: length, attributes, timestampDelta, offsetDelta,
/// keyLen, valueLen, headerCount — one byte each.
const MIN_RECORD_LEN: usize = 7;
/// Smallest encoded header: keyLen and valueLen, one byte each.
const MIN_HEADER_LEN: usize = 2;
const MAX_VARINT_LEN: usize = 5;
const MAX_VARLONG_LEN: usize = 10;

/// Why a batch or record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The buffer ends before the structure does. For a batch this is how a
    /// partial trailing batch (e.g. at the end of a Fetch response) shows up.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    /// `magic` is not 2.
    #[error("unsupported batch magic {0}")]
    BadMagic(i8),
    /// `batchLength` is smaller than a header, or disagrees with the buffer.
    #[error("invalid batch length {0}")]
    BadLength(i32),
    /// The stored CRC does not match the bytes.
    #[error("crc mismatch: stored {expected:#010x}, computed {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    /// A header field holds an impossible value.
    #[error("invalid batch header: {0}")]
    InvalidHeader(&'static str),
    /// A record inside the batch is malformed.
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    /// A varint is longer than its type allows (5 bytes for i32, 10 for i64).
    #[error("varint longer than {max_len} bytes or out of range")]
    InvalidVarint { max_len: usize },
    /// Compression codec bits 5..=7 are not defined.
    #[error("unknown compression codec {0}")]
    InvalidCompression(u8),
    /// The codec is valid but the caller cannot decode it.
    #[error("unsupported compression codec {0}")]
    UnsupportedCompression(u8),
    /// The compressed records do not decode with their codec.
    #[error("records do not decompress with codec {0}")]
    CorruptCompressed(u8),
    /// Decompression would produce more than the caller's limit (a
    /// compression bomb, or simply too much data).
    #[error("decompressed records exceed {limit} bytes")]
    DecompressedTooLarge { limit: usize },
    /// Compressing with this codec failed.
    #[error("compression with codec {0} failed")]
    CompressionFailed(u8),
}

impl BatchError {
    /// True when the input simply ended early (more bytes would help), as
    /// opposed to being malformed.
    pub fn is_truncated(&self) -> bool {
        matches!(self, BatchError::Truncated { .. })
    }
}

/// Compression codec from bits 0-2 of the batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Compression {
    /// The codec encoded in `attributes`.
    pub fn from_attributes(attributes: i16) -> Result<Compression, BatchError> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::InvalidCompression(other as u8)),
        }
    }

    /// Kafka's name for the codec (`compression.type` values), `none` for 0.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Timestamp type from bit 3 of the batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The fixed 61-byte header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf`. Only the header is needed;
    /// the records need not be present.
    ///
    /// Checks, in order: enough bytes for `batchLength` and `magic`
    /// (17), `batchLength >= 49`, `magic == 2`, then 61 bytes present.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < LENGTH_AND_MAGIC_LEN {
            return Err(BatchError::Truncated { need: BATCH_HEADER_LEN, have: buf.len() });
        }
        let batch_length = read_i32(buf, BATCH_LENGTH_OFFSET)?;
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::BadLength(batch_length));
        }
        let magic = read_i8(buf, MAGIC_OFFSET)?;
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic(magic));
        }
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated { need: BATCH_HEADER_LEN, have: buf.len() });
        }
        Ok(BatchHeader {
            base_offset: read_i64(buf, BASE_OFFSET_OFFSET)?,
            batch_length,
            partition_leader_epoch: read_i32(buf, PARTITION_LEADER_EPOCH_OFFSET)?,
            magic,
            crc: read_i32(buf, CRC_OFFSET)? as u32,
            attributes: read_i16(buf, ATTRIBUTES_OFFSET)?,
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_OFFSET)?,
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_OFFSET)?,
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_OFFSET)?,
            producer_id: read_i64(buf, PRODUCER_ID_OFFSET)?,
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_OFFSET)?,
            base_sequence: read_i32(buf, BASE_SEQUENCE_OFFSET)?,
            records_count: read_i32(buf, RECORDS_COUNT_OFFSET)?,
        })
    }

    /// Total size of the batch in bytes (`batchLength + 12`).
    pub fn total_len(&self) -> usize {
        // `parse` guarantees batch_length >= 49, so the cast is lossless.
        self.batch_length.max(0) as usize + LOG_OVERHEAD
    }

    /// Offset of the last record (`baseOffset + lastOffsetDelta`), saturating.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }

    /// Compression codec; unknown codec bits are an error.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_attributes(self.attributes)
    }

    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// CreateTime or LogAppendTime.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

/// CRC-32C over `batch[21..]` (attributes to the end). `batch` must be
/// exactly one batch; a slice shorter than the header yields the CRC of
/// whatever follows offset 21 (possibly nothing).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or(&[]))
}

/// Checks the stored CRC of the batch at the start of `batch`. Bytes after
/// the batch's end (per `batchLength`) are ignored.
pub fn verify_crc(batch: &[u8]) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let total = header.total_len();
    let bytes = batch.get(..total).ok_or(BatchError::Truncated { need: total, have: batch.len() })?;
    let actual = compute_crc(bytes);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch { expected: header.crc, actual });
    }
    Ok(())
}

/// Writes `baseOffset` (outside the CRC range: no CRC update needed).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), BatchError> {
    write_at(batch, BASE_OFFSET_OFFSET, &base_offset.to_be_bytes())
}

/// Writes `partitionLeaderEpoch` (outside the CRC range: no CRC update needed).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), BatchError> {
    write_at(batch, PARTITION_LEADER_EPOCH_OFFSET, &epoch.to_be_bytes())
}

/// Sets the timestamp type and `maxTimestamp`, then recomputes the CRC
/// (what a broker does for topics with `message.timestamp.type=LogAppendTime`).
/// `batch` must be exactly one batch.
pub fn set_max_timestamp(
    batch: &mut [u8],
    timestamp_type: TimestampType,
    max_timestamp: i64,
) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.total_len() != batch.len() {
        return Err(BatchError::BadLength(header.batch_length));
    }
    let attributes = match timestamp_type {
        TimestampType::CreateTime => header.attributes & !TIMESTAMP_TYPE_BIT,
        TimestampType::LogAppendTime => header.attributes | TIMESTAMP_TYPE_BIT,
    };
    write_at(batch, ATTRIBUTES_OFFSET, &attributes.to_be_bytes())?;
    write_at(batch, MAX_TIMESTAMP_OFFSET, &max_timestamp.to_be_bytes())?;
    update_crc(batch)
}

/// Recomputes and stores the CRC of `batch` (exactly one batch).
pub fn update_crc(batch: &mut [u8]) -> Result<(), BatchError> {
    if batch.len() < BATCH_HEADER_LEN {
        return Err(BatchError::Truncated { need: BATCH_HEADER_LEN, have: batch.len() });
    }
    let crc = compute_crc(batch);
    write_at(batch, CRC_OFFSET, &crc.to_be_bytes())
}

/// Walks a concatenation of batches, yielding the byte range of each one.
///
/// Only `batchLength` and `magic` are checked (not the CRC). A trailing
/// partial batch — normal at the end of a Fetch response — is reported as
/// [`BatchError::Truncated`]; a malformed header as `BadLength`/`BadMagic`.
/// The iterator yields at most one error and then ends.
pub fn split_batches(buf: &[u8]) -> Batches<'_> {
    Batches { buf, pos: 0 }
}

/// Iterator returned by [`split_batches`].
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Iterator for Batches<'_> {
    type Item = Result<std::ops::Range<usize>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let result = BatchHeader::parse(rest).and_then(|header| {
            let total = header.total_len();
            if rest.len() < total {
                Err(BatchError::Truncated { need: total, have: rest.len() })
            } else {
                Ok(total)
            }
        });
        match result {
            Ok(total) => {
                let start = self.pos;
                self.pos += total;
                Some(Ok(start..self.pos))
            }
            Err(e) => {
                self.pos = self.buf.len();
                Some(Err(e))
            }
        }
    }
}

/// One record of a batch. Offsets and timestamps are relative to the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Decodes the records of one UNCOMPRESSED batch at the start of `batch`.
/// Keys, values and header values share `batch`'s memory. Does not verify
/// the CRC (see [`verify_crc`]). Compressed batches fail with
/// `UnsupportedCompression` (see [`decode_records_bounded`]). Bytes after
/// the batch's end are ignored; bytes between the last record and the
/// batch's end are an error.
pub fn decode_records(batch: &Bytes) -> Result<Vec<Record>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    match header.compression()? {
        Compression::None => {}
        other => return Err(BatchError::UnsupportedCompression(other as u8)),
    }
    decode_records_bounded(batch, usize::MAX)
}

/// Decodes the records of one batch of any codec, decompressing at most
/// `limit` bytes (see [`records_payload`]).
pub fn decode_records_bounded(batch: &Bytes, limit: usize) -> Result<Vec<Record>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let payload = records_payload(batch, limit)?;
    let mut records = Vec::new();
    for r in RecordIter::new(payload, header.records_count)? {
        records.push(r?);
    }
    Ok(records)
}

/// The records part of the batch at the start of `batch`, decompressed with
/// the batch's codec into at most `limit` bytes. Uncompressed batches give a
/// zero-copy slice (not subject to `limit`).
pub fn records_payload(batch: &Bytes, limit: usize) -> Result<Bytes, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let total = header.total_len();
    if batch.len() < total {
        return Err(BatchError::Truncated { need: total, have: batch.len() });
    }
    let body = batch.slice(BATCH_HEADER_LEN..total);
    match header.compression()? {
        Compression::None => Ok(body),
        codec => crate::compression::decompress(codec, &body, limit).map(Bytes::from),
    }
}

/// Iterates over the records of an (uncompressed) records payload holding
/// `count` records. After `count` records, leftover bytes are reported as
/// one final error; a payload that ends early reports `Truncated`. Yields at
/// most one error, then ends.
#[derive(Debug)]
pub struct RecordIter {
    data: Bytes,
    pos: usize,
    left: usize,
    done: bool,
}

impl RecordIter {
    /// Checks `count` against the payload size before anything is read.
    pub fn new(payload: Bytes, count: i32) -> Result<RecordIter, BatchError> {
        let left = usize::try_from(count).map_err(|_| BatchError::InvalidHeader("negative records count"))?;
        if left > payload.len() / MIN_RECORD_LEN {
            return Err(BatchError::InvalidHeader("records count exceeds batch size"));
        }
        Ok(RecordIter { data: payload, pos: 0, left, done: false })
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            return (self.pos != self.data.len())
                .then_some(Err(BatchError::InvalidRecord("bytes after the last record")));
        }
        let mut cur = Cursor { data: &self.data, pos: self.pos, end: self.data.len() };
        let r = decode_record(&mut cur);
        self.pos = cur.pos;
        self.left -= 1;
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

/// Re-encodes a batch with a different codec: `header`'s fields are kept,
/// the codec bits are replaced, `records` (uncompressed record bytes) are
/// compressed, and the CRC is recomputed. Used when a topic's
/// `compression.type` names a codec other than the producer's.
pub fn rebuild_batch(header: &BatchHeader, records: &[u8], codec: Compression) -> Result<BytesMut, BatchError> {
    let body = crate::compression::compress(codec, records)?;
    let total = BATCH_HEADER_LEN + body.len();
    let batch_length = i32::try_from(total - LOG_OVERHEAD).map_err(|_| BatchError::InvalidHeader("batch too large"))?;
    let mut out = BytesMut::with_capacity(total);
    out.put_i64(header.base_offset);
    out.put_i32(batch_length);
    out.put_i32(header.partition_leader_epoch);
    out.put_i8(MAGIC_V2);
    out.put_u32(0);
    out.put_i16((header.attributes & !COMPRESSION_MASK) | codec as i16);
    out.put_i32(header.last_offset_delta);
    out.put_i64(header.base_timestamp);
    out.put_i64(header.max_timestamp);
    out.put_i64(header.producer_id);
    out.put_i16(header.producer_epoch);
    out.put_i32(header.base_sequence);
    out.put_i32(header.records_count);
    out.put_slice(&body);
    update_crc(&mut out)?;
    Ok(out)
}

fn decode_record(outer: &mut Cursor<'_>) -> Result<Record, BatchError> {
    let len = outer.varint()?;
    let len = usize::try_from(len).map_err(|_| BatchError::InvalidRecord("negative length"))?;
    if len > outer.remaining() {
        return Err(BatchError::Truncated { need: len, have: outer.remaining() });
    }
    let mut cur = Cursor { data: outer.data, pos: outer.pos, end: outer.pos + len };
    outer.pos += len;

    let _attributes = cur.take(1)?;
    let timestamp_delta = cur.varlong()?;
    let offset_delta = cur.varint()?;
    let key = cur.nullable_bytes("negative key length")?;
    let value = cur.nullable_bytes("negative value length")?;
    let header_count =
        usize::try_from(cur.varint()?).map_err(|_| BatchError::InvalidRecord("negative header count"))?;
    if header_count > cur.remaining() / MIN_HEADER_LEN {
        return Err(BatchError::InvalidRecord("header count exceeds record size"));
    }
    let mut headers = Vec::with_capacity(header_count);
    for _ in 0..header_count {
        let key_len =
            usize::try_from(cur.varint()?).map_err(|_| BatchError::InvalidRecord("negative header key length"))?;
        let key = cur.take(key_len)?;
        let key =
            std::str::from_utf8(&key).map_err(|_| BatchError::InvalidRecord("header key is not UTF-8"))?.to_owned();
        let value = cur.nullable_bytes("negative header value length")?;
        headers.push((key, value));
    }
    if cur.remaining() != 0 {
        return Err(BatchError::InvalidRecord("record length mismatch"));
    }
    Ok(Record { offset_delta, timestamp_delta, key, value, headers })
}

/// Bounded reader over `data[pos..end]`.
struct Cursor<'a> {
    data: &'a Bytes,
    pos: usize,
    end: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    fn rest(&self) -> &[u8] {
        self.data.get(self.pos..self.end).unwrap_or(&[])
    }

    fn take(&mut self, n: usize) -> Result<Bytes, BatchError> {
        if n > self.remaining() {
            return Err(BatchError::Truncated { need: n, have: self.remaining() });
        }
        let out = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let (v, n) = decode_varint(self.rest())?;
        self.pos += n;
        Ok(v)
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        let (v, n) = decode_varlong(self.rest())?;
        self.pos += n;
        Ok(v)
    }

    /// Length-prefixed bytes where length -1 means null.
    fn nullable_bytes(&mut self, negative: &'static str) -> Result<Option<Bytes>, BatchError> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < 0 => Err(BatchError::InvalidRecord(negative)),
            n => self.take(n as usize).map(Some),
        }
    }
}

/// Encodes an uncompressed v2 batch (base offset 0, partition leader epoch
/// -1, producer id/epoch/sequence -1 unless set), computing the CRC.
/// Meant for tests, benches and tools.
///
/// `lastOffsetDelta` is the offset delta of the last record pushed (0 for an
/// empty batch); `maxTimestamp` is `baseTimestamp` plus the largest
/// timestamp delta.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
    records: BytesMut,
    count: i32,
    last_offset_delta: i32,
    max_timestamp_delta: Option<i64>,
    /// A lastOffsetDelta beyond the last record pushed (see [`Self::last_offset_delta`]).
    fixed_last_offset_delta: Option<i32>,
}

impl BatchBuilder {
    /// An empty builder whose records are relative to `base_timestamp`.
    pub fn new(base_timestamp: i64) -> BatchBuilder {
        BatchBuilder {
            base_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
            records: BytesMut::new(),
            count: 0,
            last_offset_delta: 0,
            max_timestamp_delta: None,
            fixed_last_offset_delta: None,
        }
    }

    /// Fixes the batch's lastOffsetDelta (so its offset range, and an idempotent
    /// producer's sequence range, stay those of the batch it was cut from when records
    /// were left out, as compaction leaves them out).
    pub fn last_offset_delta(mut self, delta: i32) -> BatchBuilder {
        self.fixed_last_offset_delta = Some(delta);
        self
    }

    /// Sets the idempotent-producer fields.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> BatchBuilder {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Sets or clears the transactional attribute bit.
    pub fn transactional(mut self, on: bool) -> BatchBuilder {
        self.attributes = set_bit(self.attributes, TRANSACTIONAL_BIT, on);
        self
    }

    /// Compresses the records with `codec` when built.
    pub fn compression(mut self, codec: Compression) -> BatchBuilder {
        self.attributes = (self.attributes & !COMPRESSION_MASK) | codec as i16;
        self
    }

    /// Sets or clears the control attribute bit.
    pub fn control(mut self, on: bool) -> BatchBuilder {
        self.attributes = set_bit(self.attributes, CONTROL_BIT, on);
        self
    }

    /// Appends a record with the next offset delta and timestamp delta 0.
    pub fn add(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> &mut BatchBuilder {
        let record = Record {
            offset_delta: self.count,
            timestamp_delta: 0,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: Vec::new(),
        };
        self.push(&record)
    }

    /// Appends `record` with its own offset and timestamp deltas.
    pub fn push(&mut self, record: &Record) -> &mut BatchBuilder {
        let mut body = BytesMut::new();
        body.put_i8(0);
        encode_varlong(record.timestamp_delta, &mut body);
        encode_varint(record.offset_delta, &mut body);
        put_nullable(&mut body, record.key.as_deref());
        put_nullable(&mut body, record.value.as_deref());
        encode_varint(len_i32(record.headers.len()), &mut body);
        for (key, value) in &record.headers {
            encode_varint(len_i32(key.len()), &mut body);
            body.put_slice(key.as_bytes());
            put_nullable(&mut body, value.as_deref());
        }
        encode_varint(len_i32(body.len()), &mut self.records);
        self.records.put_slice(&body);
        self.count = self.count.saturating_add(1);
        self.last_offset_delta = record.offset_delta;
        self.max_timestamp_delta =
            Some(self.max_timestamp_delta.map_or(record.timestamp_delta, |m| m.max(record.timestamp_delta)));
        self
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record has been pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encodes the batch. A compression codec set with [`Self::compression`]
    /// is applied to the records; should that fail (it cannot for in-memory
    /// input) the batch is built uncompressed.
    pub fn build(&self) -> BytesMut {
        let codec = Compression::from_attributes(self.attributes).unwrap_or(Compression::None);
        let (attributes, body) = match crate::compression::compress(codec, &self.records) {
            Ok(body) if codec != Compression::None => (self.attributes, body),
            _ => (self.attributes & !COMPRESSION_MASK, self.records.to_vec()),
        };
        let total = BATCH_HEADER_LEN + body.len();
        let mut out = BytesMut::with_capacity(total);
        out.put_i64(0);
        out.put_i32(len_i32(total - LOG_OVERHEAD));
        out.put_i32(-1);
        out.put_i8(MAGIC_V2);
        out.put_u32(0); // CRC, filled in below
        out.put_i16(attributes);
        out.put_i32(self.fixed_last_offset_delta.unwrap_or(self.last_offset_delta).max(self.last_offset_delta));
        out.put_i64(self.base_timestamp);
        out.put_i64(self.base_timestamp.saturating_add(self.max_timestamp_delta.unwrap_or(0)));
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.count);
        out.put_slice(&body);
        let crc = compute_crc(&out);
        out[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

/// A transaction marker (Kafka's `EndTxnMarker`): the single record of a control batch
/// that ends a producer's transaction in a partition (ADR 0012). Its key is `i16 version
/// 0 | i16 type` (0 abort, 1 commit), its value `i16 version 0 | i32 coordinator epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// Commit (true) or abort (false).
    pub commit: bool,
    /// Epoch of the transaction coordinator that wrote it (fences deposed coordinators).
    pub coordinator_epoch: i32,
}

/// Control record type of an abort marker.
const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a commit marker.
const CONTROL_TYPE_COMMIT: i16 = 1;

impl TxnMarker {
    /// The marker of the control batch at the start of `batch`: `Ok(None)` for a batch
    /// that is not a control batch, or whose control record is not a transaction marker
    /// (Kafka has other control types, e.g. KRaft's); an error for a malformed one.
    pub fn parse(batch: &Bytes) -> Result<Option<TxnMarker>, BatchError> {
        let header = BatchHeader::parse(batch)?;
        if !header.is_control() {
            return Ok(None);
        }
        let payload = records_payload(batch, 1 << 16)?;
        let Some(record) = RecordIter::new(payload, header.records_count)?.next() else {
            return Err(BatchError::InvalidRecord("control batch without a record"));
        };
        let record = record?;
        let key = record.key.as_deref().unwrap_or(&[]);
        let kind = match key {
            [_, _, a, b, ..] => i16::from_be_bytes([*a, *b]),
            _ => return Err(BatchError::InvalidRecord("control record key shorter than 4 bytes")),
        };
        let commit = match kind {
            CONTROL_TYPE_ABORT => false,
            CONTROL_TYPE_COMMIT => true,
            _ => return Ok(None),
        };
        let value = record.value.as_deref().unwrap_or(&[]);
        let coordinator_epoch = match value {
            [_, _, a, b, c, d, ..] => i32::from_be_bytes([*a, *b, *c, *d]),
            _ => return Err(BatchError::InvalidRecord("transaction marker value shorter than 6 bytes")),
        };
        Ok(Some(TxnMarker { commit, coordinator_epoch }))
    }

    /// The control batch carrying this marker for a producer's transaction: transactional
    /// and control bits set, no base sequence (markers are not sequenced), offset 0.
    pub fn batch(self, producer_id: i64, producer_epoch: i16, timestamp: i64) -> BytesMut {
        let kind = if self.commit { CONTROL_TYPE_COMMIT } else { CONTROL_TYPE_ABORT };
        let mut key = [0u8; 4];
        key[2..].copy_from_slice(&kind.to_be_bytes());
        let mut value = [0u8; 6];
        value[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        let mut b =
            BatchBuilder::new(timestamp).producer(producer_id, producer_epoch, -1).transactional(true).control(true);
        b.add(Some(&key), Some(&value));
        b.build()
    }
}

fn set_bit(attributes: i16, bit: i16, on: bool) -> i16 {
    if on {
        attributes | bit
    } else {
        attributes & !bit
    }
}

/// Lengths above i32::MAX cannot be encoded; the builder saturates (such a
/// batch would be rejected anyway).
fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

fn put_nullable(out: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => encode_varint(-1, out),
        Some(b) => {
            encode_varint(len_i32(b.len()), out);
            out.put_slice(b);
        }
    }
}

/// Appends `value` as a zigzag varint (1-5 bytes).
pub fn encode_varint(value: i32, out: &mut impl BufMut) {
    encode_unsigned(u64::from(((value << 1) ^ (value >> 31)) as u32), out);
}

/// Appends `value` as a zigzag varlong (1-10 bytes).
pub fn encode_varlong(value: i64, out: &mut impl BufMut) {
    encode_unsigned(((value << 1) ^ (value >> 63)) as u64, out);
}

/// Encoded size of `value` as a zigzag varint.
pub fn varint_len(value: i32) -> usize {
    unsigned_len(u64::from(((value << 1) ^ (value >> 31)) as u32))
}

/// Encoded size of `value` as a zigzag varlong.
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(((value << 1) ^ (value >> 63)) as u64)
}

/// Decodes a zigzag varint from the start of `buf`, returning the value and
/// the bytes consumed. More than 5 bytes, or a value above 32 bits, is
/// `InvalidVarint`; running out of bytes is `Truncated`.
pub fn decode_varint(buf: &[u8]) -> Result<(i32, usize), BatchError> {
    let (raw, n) = decode_unsigned(buf, MAX_VARINT_LEN)?;
    let raw = u32::try_from(raw).map_err(|_| BatchError::InvalidVarint { max_len: MAX_VARINT_LEN })?;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), n))
}

/// Decodes a zigzag varlong from the start of `buf`, returning the value and
/// the bytes consumed. More than 10 bytes, or a value above 64 bits, is
/// `InvalidVarint`; running out of bytes is `Truncated`.
pub fn decode_varlong(buf: &[u8]) -> Result<(i64, usize), BatchError> {
    let (raw, n) = decode_unsigned(buf, MAX_VARLONG_LEN)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), n))
}

fn encode_unsigned(mut v: u64, out: &mut impl BufMut) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn unsigned_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn decode_unsigned(buf: &[u8], max_len: usize) -> Result<(u64, usize), BatchError> {
    let mut value = 0u64;
    for i in 0..max_len {
        let b = *buf.get(i).ok_or(BatchError::Truncated { need: i + 1, have: buf.len() })?;
        // The 10th byte of a varlong may only carry the 64th bit.
        if i == 9 && b > 1 {
            return Err(BatchError::InvalidVarint { max_len });
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(BatchError::InvalidVarint { max_len })
}

fn field<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], BatchError> {
    buf.get(at..at + N).and_then(|s| s.try_into().ok()).ok_or(BatchError::Truncated { need: at + N, have: buf.len() })
}

fn read_i8(buf: &[u8], at: usize) -> Result<i8, BatchError> {
    field::<1>(buf, at).map(i8::from_be_bytes)
}

fn read_i16(buf: &[u8], at: usize) -> Result<i16, BatchError> {
    field::<2>(buf, at).map(i16::from_be_bytes)
}

fn read_i32(buf: &[u8], at: usize) -> Result<i32, BatchError> {
    field::<4>(buf, at).map(i32::from_be_bytes)
}

fn read_i64(buf: &[u8], at: usize) -> Result<i64, BatchError> {
    field::<8>(buf, at).map(i64::from_be_bytes)
}

fn write_at(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), BatchError> {
    let have = buf.len();
    let dst = buf.get_mut(at..at + bytes.len()).ok_or(BatchError::Truncated { need: at + bytes.len(), have })?;
    dst.copy_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_batch() -> BytesMut {
        let mut b = BatchBuilder::new(1_700_000_000_000).producer(7, 1, 42);
        b.add(Some(b"k1"), Some(b"v1"));
        b.push(&Record {
            offset_delta: 1,
            timestamp_delta: 5,
            key: None,
            value: Some(Bytes::from_static(b"value two")),
            headers: vec![("h".to_owned(), Some(Bytes::from_static(b"x"))), ("n".to_owned(), None)],
        });
        b.add(None, None);
        b.build()
    }

    #[test]
    fn header_fields_are_parsed_at_their_documented_offsets() {
        let batch = sample_batch();
        let h = BatchHeader::parse(&batch).unwrap();
        assert_eq!(h.base_offset, 0);
        assert_eq!(h.total_len(), batch.len());
        assert_eq!(h.magic, 2);
        assert_eq!(h.partition_leader_epoch, -1);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.last_offset(), 2);
        assert_eq!(h.base_timestamp, 1_700_000_000_000);
        assert_eq!(h.max_timestamp, 1_700_000_000_005);
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (7, 1, 42));
        assert_eq!(h.records_count, 3);
        assert_eq!(h.compression(), Ok(Compression::None));
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        assert!(!h.is_transactional() && !h.is_control());
        verify_crc(&batch).unwrap();
    }

    #[test]
    fn records_round_trip_through_the_builder() {
        let batch = sample_batch().freeze();
        let records = decode_records(&batch).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(records[1].offset_delta, 1);
        assert_eq!(records[1].timestamp_delta, 5);
        assert_eq!(records[1].headers[0].0, "h");
        assert_eq!(records[1].headers[1].1, None);
        assert_eq!(records[2].key, None);
        assert_eq!(records[2].value, None);
    }

    #[test]
    fn patching_offset_and_epoch_keeps_the_crc_valid() {
        let mut batch = sample_batch();
        set_base_offset(&mut batch, 1234).unwrap();
        set_partition_leader_epoch(&mut batch, 9).unwrap();
        let h = BatchHeader::parse(&batch).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch), (1234, 9));
        assert_eq!(h.last_offset(), 1236);
        verify_crc(&batch).unwrap();
        assert!(set_base_offset(&mut [0u8; 7], 1).is_err());
    }

    #[test]
    fn log_append_time_patch_recomputes_the_crc() {
        let mut batch = sample_batch();
        set_max_timestamp(&mut batch, TimestampType::LogAppendTime, 99).unwrap();
        let h = BatchHeader::parse(&batch).unwrap();
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(h.max_timestamp, 99);
        verify_crc(&batch).unwrap();
    }

    #[test]
    fn every_flipped_bit_in_the_crc_range_is_detected() {
        let batch = sample_batch();
        for i in ATTRIBUTES_OFFSET..batch.len() {
            for bit in 0..8 {
                let mut b = batch.clone();
                b[i] ^= 1 << bit;
                assert!(matches!(verify_crc(&b), Err(BatchError::CrcMismatch { .. })), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn bad_magic_and_bad_length_are_reported() {
        let mut batch = sample_batch();
        batch[MAGIC_OFFSET] = 1;
        assert_eq!(BatchHeader::parse(&batch), Err(BatchError::BadMagic(1)));
        let mut batch = sample_batch();
        batch[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(BatchHeader::parse(&batch), Err(BatchError::BadLength(10)));
    }

    #[test]
    fn truncation_at_every_byte_is_an_error_not_a_panic() {
        let batch = sample_batch().freeze();
        for cut in 0..batch.len() {
            let short = batch.slice(..cut);
            assert!(decode_records(&short).is_err(), "cut {cut}");
            assert!(verify_crc(&short).is_err(), "cut {cut}");
            let mut it = split_batches(&short);
            if cut > 0 {
                assert!(matches!(it.next(), Some(Err(BatchError::Truncated { .. }))));
            }
            assert!(it.next().is_none());
        }
    }

    #[test]
    fn split_batches_walks_a_concatenation_and_flags_the_partial_tail() {
        let one = sample_batch();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&one);
        buf.extend_from_slice(&one);
        buf.extend_from_slice(&one[..30]);
        let spans: Vec<_> = split_batches(&buf).collect();
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0], Ok(0..one.len()));
        assert_eq!(spans[1], Ok(one.len()..2 * one.len()));
        assert_eq!(spans[2], Err(BatchError::Truncated { need: BATCH_HEADER_LEN, have: 30 }));
        buf.truncate(2 * one.len());
        assert_eq!(split_batches(&buf).count(), 2);
    }

    #[test]
    fn huge_counts_fail_without_allocating() {
        let mut batch = sample_batch();
        batch[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(decode_records(&batch.freeze()), Err(BatchError::InvalidHeader(_))));
    }

    #[test]
    fn compressed_batches_decode_with_every_codec_and_rebuild_with_another() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut b = BatchBuilder::new(1_700_000_000_000).compression(codec);
            for i in 0..100 {
                b.add(Some(format!("k{i}").as_bytes()), Some(&[b'x'; 100]));
            }
            let batch = b.build().freeze();
            let h = BatchHeader::parse(&batch).unwrap();
            assert_eq!(h.compression(), Ok(codec));
            verify_crc(&batch).unwrap();
            let records = decode_records_bounded(&batch, 1 << 20).unwrap();
            assert_eq!(records.len(), 100);
            assert!(matches!(decode_records_bounded(&batch, 100), Err(BatchError::DecompressedTooLarge { .. })));
            let payload = records_payload(&batch, 1 << 20).unwrap();
            let other = rebuild_batch(&h, &payload, Compression::None).unwrap().freeze();
            verify_crc(&other).unwrap();
            assert_eq!(decode_records(&other).unwrap(), records);
            let again = rebuild_batch(&h, &payload, Compression::Lz4).unwrap().freeze();
            assert_eq!(decode_records_bounded(&again, 1 << 20).unwrap(), records);
        }
    }

    #[test]
    fn compressed_batches_are_reported_as_unsupported() {
        let mut batch = sample_batch();
        batch[ATTRIBUTES_OFFSET + 1] |= 3;
        assert_eq!(decode_records(&batch.freeze()), Err(BatchError::UnsupportedCompression(3)));
        let mut batch = sample_batch();
        batch[ATTRIBUTES_OFFSET + 1] |= 6;
        assert_eq!(BatchHeader::parse(&batch).unwrap().compression(), Err(BatchError::InvalidCompression(6)));
    }

    #[test]
    fn varints_match_known_encodings_and_reject_overlong_input() {
        let cases: [(i64, &[u8]); 6] =
            [(0, &[0x00]), (-1, &[0x01]), (1, &[0x02]), (63, &[0x7e]), (-64, &[0x7f]), (64, &[0x80, 0x01])];
        for (v, enc) in cases {
            let mut out = Vec::new();
            encode_varint(v as i32, &mut out);
            assert_eq!(out, enc);
            assert_eq!(decode_varint(enc), Ok((v as i32, enc.len())));
            assert_eq!(decode_varlong(enc), Ok((v, enc.len())));
        }
        let mut out = Vec::new();
        encode_varint(i32::MIN, &mut out);
        assert_eq!(out.len(), 5);
        assert_eq!(decode_varint(&out), Ok((i32::MIN, 5)));
        out.clear();
        encode_varlong(i64::MIN, &mut out);
        assert_eq!(out.len(), 10);
        assert_eq!(decode_varlong(&out), Ok((i64::MIN, 10)));

        let six = [0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert!(matches!(decode_varint(&six), Err(BatchError::InvalidVarint { .. })));
        // 5 bytes but more than 32 bits.
        let wide = [0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(decode_varint(&wide), Err(BatchError::InvalidVarint { .. })));
        let eleven = [0x80; 11];
        assert!(matches!(decode_varlong(&eleven), Err(BatchError::InvalidVarint { .. })));
        let tenth_too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(decode_varlong(&tenth_too_big), Err(BatchError::InvalidVarint { .. })));
        assert!(matches!(decode_varint(&[0x80]), Err(BatchError::Truncated { .. })));
    }

    #[test]
    fn timestamp_deltas_beyond_32_bits_round_trip() {
        let mut b = BatchBuilder::new(0);
        let delta = (1i64 << 31) + 12345;
        b.push(&Record {
            offset_delta: 0,
            timestamp_delta: delta,
            key: None,
            value: Some(Bytes::from_static(b"x")),
            headers: vec![],
        });
        let batch = b.build().freeze();
        assert_eq!(BatchHeader::parse(&batch).unwrap().max_timestamp, delta);
        assert_eq!(decode_records(&batch).unwrap()[0].timestamp_delta, delta);
    }

    fn arb_bytes() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from))
    }

    fn arb_records() -> impl Strategy<Value = Vec<Record>> {
        proptest::collection::vec(
            (
                any::<i64>(),
                arb_bytes(),
                arb_bytes(),
                proptest::collection::vec(("[a-z\u{e9}]{0,8}", arb_bytes()), 0..4),
            ),
            0..12,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (ts, key, value, headers))| Record {
                    offset_delta: i as i32,
                    timestamp_delta: ts,
                    key,
                    value,
                    headers,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn build_parse_decode_round_trips(records in arb_records(), base_ts in any::<i64>()) {
            let mut b = BatchBuilder::new(base_ts);
            for r in &records {
                b.push(r);
            }
            let batch = b.build().freeze();
            let h = BatchHeader::parse(&batch).unwrap();
            prop_assert_eq!(h.total_len(), batch.len());
            prop_assert_eq!(h.records_count as usize, records.len());
            verify_crc(&batch).unwrap();
            prop_assert_eq!(decode_records(&batch).unwrap(), records);
        }

        #[test]
        fn varints_round_trip(v in any::<i32>(), l in any::<i64>()) {
            let mut out = Vec::new();
            encode_varint(v, &mut out);
            prop_assert_eq!(out.len(), varint_len(v));
            prop_assert_eq!(decode_varint(&out), Ok((v, out.len())));
            out.clear();
            encode_varlong(l, &mut out);
            prop_assert_eq!(out.len(), varlong_len(l));
            prop_assert_eq!(decode_varlong(&out), Ok((l, out.len())));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let data = Bytes::from(data);
            let _ = BatchHeader::parse(&data);
            let _ = verify_crc(&data);
            let _ = decode_records(&data);
            let _ = split_batches(&data).count();
            let _ = decode_varint(&data);
            let _ = decode_varlong(&data);
        }

        #[test]
        fn corrupted_valid_batches_never_panic(
            records in arb_records(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut b = BatchBuilder::new(0);
            for r in &records {
                b.push(r);
            }
            let mut batch = b.build();
            for (at, byte) in flips {
                let i = at.index(batch.len());
                batch[i] = byte;
            }
            let batch = batch.freeze();
            let _ = decode_records(&batch);
            let _ = verify_crc(&batch);
        }
    }

    #[test]
    fn txn_markers_round_trip_and_other_batches_are_not_markers() {
        for (commit, epoch) in [(true, 7), (false, 0), (true, i32::MAX)] {
            let m = TxnMarker { commit, coordinator_epoch: epoch };
            let b = m.batch(42, 3, 1_000).freeze();
            let h = BatchHeader::parse(&b).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence, h.records_count), (42, 3, -1, 1));
            verify_crc(&b).unwrap();
            assert_eq!(TxnMarker::parse(&b), Ok(Some(m)));
        }
        let mut data = BatchBuilder::new(0).producer(42, 3, 0).transactional(true);
        data.add(None, Some(b"v"));
        assert_eq!(TxnMarker::parse(&data.build().freeze()), Ok(None));
    }

    #[test]
    fn malformed_control_records_are_errors_and_unknown_types_are_not_markers() {
        let control = |key: &[u8], value: &[u8]| {
            let mut b = BatchBuilder::new(0).producer(1, 0, -1).transactional(true).control(true);
            b.add(Some(key), Some(value));
            b.build().freeze()
        };
        assert!(TxnMarker::parse(&control(&[0, 0, 0], &[0, 0, 0, 0, 0, 1])).is_err());
        assert!(TxnMarker::parse(&control(&[0, 0, 0, 1], &[0, 0, 0])).is_err());
        // Type 2 and up (KRaft's leader-change and snapshot records) are not markers.
        assert_eq!(TxnMarker::parse(&control(&[0, 0, 0, 2], &[0, 0, 0, 0, 0, 1])), Ok(None));
        let empty = BatchBuilder::new(0).control(true).build().freeze();
        assert!(TxnMarker::parse(&empty).is_err());
    }
}
