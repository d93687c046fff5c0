//! ListOffsets (key 2): earliest, latest, max-timestamp and by-timestamp lookups.

use strom_protocol::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use strom_protocol::records::{decode_records_bounded, BatchHeader};
use strom_protocol::{ListOffsetsRequest, ListOffsetsResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::metadata::Partition;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 2, min: 1, max: 11, advertised_min: 1 };

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// Within the batch starting at `base`, the first record matching `pick`, as (offset, timestamp).
/// Compressed batches are decompressed (bounded, as on produce).
fn find_in_batch(p: &Partition, base: i64, pick: impl Fn(i64) -> bool) -> Option<(i64, i64)> {
    let data = p.read(base, 1).ok()?;
    let header = BatchHeader::parse(&data).ok()?;
    let batch = data.slice(..header.total_len().min(data.len()));
    // Bounded like produce validation: the batch was accepted under the same limit.
    decode_records_bounded(&batch, crate::api::produce::DECOMPRESSED_LIMIT_FLOOR)
        .ok()?
        .iter()
        .map(|r| (header.base_offset + i64::from(r.offset_delta), header.base_timestamp + r.timestamp_delta))
        .find(|(_, ts)| pick(*ts))
}

/// The lookup of `timestamp`; for `read_committed` (isolation level 1) the latest offset
/// is the last stable offset and nothing at or past it is found (Kafka's rule).
fn lookup(p: &Partition, timestamp: i64, read_committed: bool) -> Result<(i64, i64), ErrorCode> {
    if !read_committed {
        return lookup_below(p, timestamp, p.high_watermark());
    }
    let lso = p.last_stable_offset();
    match lookup_below(p, timestamp, lso)? {
        (offset, _) if timestamp != LATEST && offset >= lso => Ok((-1, -1)),
        found => Ok(found),
    }
}

fn lookup_below(p: &Partition, timestamp: i64, latest: i64) -> Result<(i64, i64), ErrorCode> {
    match timestamp {
        LATEST => Ok((latest, -1)),
        EARLIEST | EARLIEST_LOCAL => Ok((p.log_start_offset(), -1)),
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok((-1, -1)),
        MAX_TIMESTAMP => match p.max_timestamp() {
            None => Ok((-1, -1)),
            Some((ts, batch_base)) => Ok(find_in_batch(p, batch_base, |t| t == ts).unwrap_or((batch_base, ts))),
        },
        ts if ts < 0 => Err(ErrorCode::InvalidRequest),
        ts => match p.batch_for_timestamp(ts)? {
            None => Ok((-1, -1)),
            Some(base) => Ok(find_in_batch(p, base, |t| t >= ts).unwrap_or((base, ts))),
        },
    }
}

/// The offset of the first record with a timestamp at or after `ts`, if any (what
/// ListOffsets answers for a timestamp; also `share.auto.offset.reset=by_duration:`).
pub(super) fn first_offset_since(p: &Partition, ts: i64) -> Option<i64> {
    match lookup_below(p, ts.max(0), p.high_watermark()) {
        Ok((offset, _)) if offset >= 0 => Some(offset),
        _ => None,
    }
}

/// Answers each partition's lookup.
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let read_committed = req.isolation_level == 1;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = node.meta.topic(&t.name);
            let denied = !az.topic(op::DESCRIBE, &t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|lp| {
                    let mut r =
                        ListOffsetsPartitionResponse { partition_index: lp.partition_index, ..Default::default() };
                    if denied {
                        r.error_code = ErrorCode::TopicAuthorizationFailed.code();
                        return r;
                    }
                    let p = topic
                        .as_ref()
                        .and_then(|t| usize::try_from(lp.partition_index).ok().and_then(|i| t.partitions.get(i)));
                    match p
                        .ok_or(ErrorCode::UnknownTopicOrPartition)
                        .and_then(|p| {
                            if node.meta.leads_partition(p) {
                                Ok(p)
                            } else {
                                Err(ErrorCode::NotLeaderOrFollower)
                            }
                        })
                        .and_then(|p| lookup(p, lp.timestamp, read_committed).map(|x| (x, p.leader_epoch())))
                    {
                        Ok(((offset, ts), epoch)) => {
                            r.offset = offset;
                            r.timestamp = ts;
                            r.leader_epoch = if offset >= 0 { epoch } else { -1 };
                        }
                        Err(code) => r.error_code = code.code(),
                    }
                    r
                })
                .collect();
            ListOffsetsTopicResponse { name: t.name, partitions, ..Default::default() }
        })
        .collect();
    ListOffsetsResponse { topics, ..Default::default() }
}
