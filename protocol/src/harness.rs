//! Entry points over arbitrary bytes, shared by the fuzz targets (`fuzz/`) and the
//! killer-corpus replay (`tests/killers.rs`), so that what is fuzzed and what is
//! replayed by `cargo test` is the same code. Each one must return (an error is fine)
//! for any input: never panic, never allocate beyond the decoder's heap budget.

use bytes::Bytes;

use crate::codec::Reader;
use crate::compression::decompress;
use crate::error::DecodeError;
use crate::frame::RequestHeader;
use crate::records::{self, BatchHeader, Compression, RecordIter};
use crate::API_SCHEMAS;

/// Decompression limit used by the record harnesses (the broker's floor is 64 MiB; a
/// smaller one keeps fuzzing fast while exercising the same bound).
pub const FUZZ_DECOMPRESS_LIMIT: usize = 4 << 20;

macro_rules! decode_body {
    ($key:expr, $version:expr, $r:expr, $reencode:expr, $($ty:ident),* $(,)?) => {
        match $key {
            $(k if k == crate::$ty::API_KEY => {
                let m = crate::$ty::decode($r, $version)?;
                if $reencode {
                    // Whatever decoded must re-encode without panicking.
                    let mut w = crate::Writer::new();
                    let _ = m.encode(&mut w, $version);
                }
                Ok(())
            })*
            k => Err(DecodeError::UnknownApiKey(k)),
        }
    };
}

/// Decodes the body of request `key` at `version` from `r` (and, with `reencode`,
/// encodes the result again).
pub fn decode_request_body(key: i16, version: i16, r: &mut Reader, reencode: bool) -> Result<(), DecodeError> {
    decode_body!(
        key,
        version,
        r,
        reencode,
        ProduceRequest,
        FetchRequest,
        ListOffsetsRequest,
        MetadataRequest,
        OffsetCommitRequest,
        OffsetFetchRequest,
        FindCoordinatorRequest,
        JoinGroupRequest,
        HeartbeatRequest,
        LeaveGroupRequest,
        SyncGroupRequest,
        DescribeGroupsRequest,
        ListGroupsRequest,
        ApiVersionsRequest,
        CreateTopicsRequest,
        DeleteTopicsRequest,
        InitProducerIdRequest,
        AddPartitionsToTxnRequest,
        AddOffsetsToTxnRequest,
        EndTxnRequest,
        WriteTxnMarkersRequest,
        TxnOffsetCommitRequest,
        DescribeProducersRequest,
        DescribeTransactionsRequest,
        ListTransactionsRequest,
        DescribeConfigsRequest,
        DeleteGroupsRequest,
        OffsetDeleteRequest,
        DescribeClusterRequest,
        ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribeRequest,
        DeleteRecordsRequest,
        ElectLeadersRequest,
        AlterPartitionReassignmentsRequest,
        ListPartitionReassignmentsRequest,
        CreatePartitionsRequest,
        AlterConfigsRequest,
        IncrementalAlterConfigsRequest,
        DescribeLogDirsRequest,
        DescribeTopicPartitionsRequest,
        OffsetForLeaderEpochRequest,
        AlterReplicaLogDirsRequest,
        DescribeQuorumRequest,
        GetTelemetrySubscriptionsRequest,
        PushTelemetryRequest,
        ListConfigResourcesRequest,
        ShareGroupHeartbeatRequest,
        ShareGroupDescribeRequest,
        ShareFetchRequest,
        ShareAcknowledgeRequest,
        ReadShareGroupStateRequest,
        WriteShareGroupStateRequest,
        DeleteShareGroupStateRequest,
        DescribeShareGroupOffsetsRequest,
        AlterShareGroupOffsetsRequest,
        DeleteShareGroupOffsetsRequest,
        SaslHandshakeRequest,
        SaslAuthenticateRequest,
        DescribeUserScramCredentialsRequest,
        AlterUserScramCredentialsRequest,
        CreateAclsRequest,
        DescribeAclsRequest,
        DeleteAclsRequest,
    )
}

/// A request frame (size prefix removed) as the broker decodes it: header (v1 or v2,
/// following the API's flexible versions), then the body at the header's version.
pub fn request_frame(data: &[u8]) -> Result<(), DecodeError> {
    decode_frame(Bytes::copy_from_slice(data), true)
}

/// [`request_frame`] over an owned frame, optionally without the re-encode step (the
/// heap-bound test measures decoding alone).
pub fn decode_frame(frame: Bytes, reencode: bool) -> Result<(), DecodeError> {
    let mut r = Reader::new(frame);
    let h = RequestHeader::decode(&mut r)?;
    decode_request_body(h.api_key, h.api_version, &mut r, reencode)
}

/// A request body of the API and version picked by the first two bytes (every API in
/// the schema, every version in its range), so the fuzzer reaches every body directly.
pub fn request_body(data: &[u8]) -> Result<(), DecodeError> {
    let [_, _, rest @ ..] = data else { return Ok(()) };
    body_with_selector(data, Bytes::copy_from_slice(rest), true)
}

/// [`request_body`] with the body already owned (`data[2..]`), optionally without re-encoding.
pub fn body_with_selector(data: &[u8], body: Bytes, reencode: bool) -> Result<(), DecodeError> {
    let [a, v, ..] = data else { return Ok(()) };
    let s = &API_SCHEMAS[usize::from(*a) % API_SCHEMAS.len()];
    let span = u8::try_from(s.max_version - s.min_version + 1).unwrap_or(u8::MAX);
    let version = s.min_version + i16::from(*v % span);
    let mut r = Reader::new(body);
    decode_request_body(s.key, version, &mut r, reencode)
}

/// Record batches as a Produce carries them: split, header, CRC, bounded
/// decompression with the batch's codec, every record.
pub fn record_batches(data: &[u8]) {
    let all = Bytes::copy_from_slice(data);
    for range in records::split_batches(data) {
        let Ok(range) = range else { break };
        let b = all.slice(range);
        let _ = records::verify_crc(&b);
        let Ok(header) = BatchHeader::parse(&b) else { continue };
        let _ = header.compression();
        // Transaction markers are read from replicated and recovered control batches.
        let _ = records::TxnMarker::parse(&b);
        let Ok(payload) = records::records_payload(&b, FUZZ_DECOMPRESS_LIMIT) else { continue };
        if let Ok(it) = RecordIter::new(payload.clone(), header.records_count) {
            for r in it {
                if r.is_err() {
                    break;
                }
            }
        }
        if payload.len() <= 1 << 16 {
            let _ = records::rebuild_batch(&header, &payload, Compression::Snappy);
        }
    }
}

/// A raw payload for the codec picked by the first byte (gzip, snappy raw or xerial,
/// lz4, zstd), decompressed within `FUZZ_DECOMPRESS_LIMIT`.
pub fn decompress_any(data: &[u8]) {
    let [c, rest @ ..] = data else { return };
    let codec = match c % 4 {
        0 => Compression::Gzip,
        1 => Compression::Snappy,
        2 => Compression::Lz4,
        _ => Compression::Zstd,
    };
    if let Ok(out) = decompress(codec, rest, FUZZ_DECOMPRESS_LIMIT) {
        assert!(out.len() <= FUZZ_DECOMPRESS_LIMIT, "decompression exceeded its limit");
    }
}

/// Zig-zag varints/varlongs (records) and unsigned varints (flexible versions): any
/// value that decodes re-encodes to a value that decodes the same.
pub fn varints(data: &[u8]) {
    if let Ok((v, _)) = records::decode_varint(data) {
        let mut out = Vec::new();
        records::encode_varint(v, &mut out);
        assert_eq!(records::decode_varint(&out).map(|x| x.0), Ok(v), "varint round trip");
    }
    if let Ok((v, _)) = records::decode_varlong(data) {
        let mut out = Vec::new();
        records::encode_varlong(v, &mut out);
        assert_eq!(records::decode_varlong(&out).map(|x| x.0), Ok(v), "varlong round trip");
    }
    let mut r = Reader::new(Bytes::copy_from_slice(data));
    if let Ok(v) = r.uvarint() {
        let mut w = crate::Writer::new();
        w.uvarint(v);
        assert_eq!(Reader::new(w.into_bytes()).uvarint().ok(), Some(v), "uvarint round trip");
    }
}

/// A metadata-log record value (ADR 0008) as a broker decodes it from its log or from
/// another node; whatever decodes must re-encode to the same bytes.
pub fn metadata_record(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    // The same bytes as a whole change (count + length-prefixed records): what the
    // metadata log, snapshots and controller frames carry.
    if let Ok(records) = crate::metadata_record::decode_change(bytes.clone()) {
        if let Ok(again) = crate::metadata_record::encode_change(&records) {
            assert_eq!(crate::metadata_record::decode_change(again).ok(), Some(records));
        }
    }
    if let Ok(rec) = crate::metadata_record::Record::decode(bytes.clone()) {
        // Tagged fields are dropped on re-encode, so compare the re-decoded record.
        if let Ok(again) = rec.encode() {
            assert_eq!(crate::metadata_record::Record::decode(again).ok(), Some(rec));
        }
    }
}
