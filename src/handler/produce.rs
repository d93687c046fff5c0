//! Produce (key 0): validate each partition's batch and append it as it arrived.
//!
//! v0–2 are advertised (see [`super::ApiRange::advertised_min`]) but refused, as Kafka 4
//! does. On a single node every appended batch is immediately committed, so acks=1 and
//! acks=-1 answer at the same point; acks=0 gets no response at all.

use strom_protocol::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use strom_protocol::records::{split_batches, BatchHeader, MAGIC_V2};
use strom_protocol::{ProduceRequest, ProduceResponse, Uuid};

use super::ApiRange;
use crate::cluster::{Cluster, Partition, Topic};
use crate::error::ErrorCode;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 0, min: 3, max: 13, advertised_min: 0 };

/// Checks what Kafka checks before appending: exactly one magic-2 batch, not a control
/// batch, within `message.max.bytes`. CRC and length checks happen in storage.
fn validate(records: &[u8], max_bytes: usize) -> Result<(), (ErrorCode, String)> {
    let mut batches = split_batches(records);
    let first = match batches.next() {
        Some(Ok(b)) => b,
        Some(Err(e)) => return Err((ErrorCode::CorruptMessage, e.to_string())),
        None => return Err((ErrorCode::InvalidRecord, "no record batch".into())),
    };
    if batches.next().is_some() {
        return Err((ErrorCode::InvalidRecord, "produce v3+ carries exactly one record batch per partition".into()));
    }
    let len = first.len();
    let header = BatchHeader::parse(&records[first]).map_err(|e| (ErrorCode::CorruptMessage, e.to_string()))?;
    if header.magic != MAGIC_V2 {
        return Err((ErrorCode::InvalidRecord, format!("record batch magic {} is not 2", header.magic)));
    }
    if header.is_control() {
        return Err((ErrorCode::InvalidRecord, "clients may not send control batches".into()));
    }
    if len > max_bytes {
        return Err((ErrorCode::MessageTooLarge, format!("batch of {len} bytes exceeds {max_bytes}")));
    }
    Ok(())
}

fn append(cluster: &Cluster, p: &Partition, records: Option<&bytes::Bytes>) -> PartitionProduceResponse {
    let mut resp = PartitionProduceResponse { index: p.index, base_offset: -1, ..Default::default() };
    let outcome = records
        .ok_or((ErrorCode::InvalidRecord, "null records".to_string()))
        .and_then(|r| validate(r, cluster.config.message_max_bytes).map(|_| r))
        .and_then(|r| p.append(r));
    match outcome {
        Ok(info) => resp.base_offset = info.base_offset,
        Err((code, msg)) => {
            tracing::debug!(partition = ?p, error = %msg, "produce rejected");
            resp.error_code = code.code();
            resp.error_message = Some(msg);
        }
    }
    resp.log_start_offset = p.log_start_offset();
    resp
}

/// Appends every partition's batch; `None` when acks=0.
pub async fn handle(cluster: &Cluster, version: i16, req: ProduceRequest) -> Option<ProduceResponse> {
    let acks_ok = matches!(req.acks, -1..=1);
    let responses = req
        .topic_data
        .iter()
        .map(|td| {
            let topic: Option<std::sync::Arc<Topic>> =
                if version >= 13 { cluster.topic_by_id(&td.topic_id) } else { cluster.topic(&td.name) };
            let missing = if version >= 13 { ErrorCode::UnknownTopicId } else { ErrorCode::UnknownTopicOrPartition };
            let partition_responses = td
                .partition_data
                .iter()
                .map(|pd| {
                    let err = |code: ErrorCode| PartitionProduceResponse {
                        index: pd.index,
                        error_code: code.code(),
                        base_offset: -1,
                        ..Default::default()
                    };
                    if !acks_ok {
                        return err(ErrorCode::InvalidRequiredAcks);
                    }
                    let Some(t) = &topic else { return err(missing) };
                    let Some(p) = usize::try_from(pd.index).ok().and_then(|i| t.partitions.get(i)) else {
                        return err(ErrorCode::UnknownTopicOrPartition);
                    };
                    append(cluster, p, pd.records.as_ref())
                })
                .collect();
            TopicProduceResponse {
                name: td.name.clone(),
                topic_id: topic.as_ref().map(|t| t.id).unwrap_or(Uuid::ZERO),
                partition_responses,
                ..Default::default()
            }
        })
        .collect();
    if req.acks == 0 {
        return None;
    }
    Some(ProduceResponse { responses, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::records::BatchBuilder;

    fn batch() -> Vec<u8> {
        let mut b = BatchBuilder::new(1_700_000_000_000);
        b.add(Some(b"k"), Some(b"v"));
        b.build().to_vec()
    }

    #[test]
    fn one_valid_batch_passes() {
        assert!(validate(&batch(), 1 << 20).is_ok());
    }

    #[test]
    fn two_batches_are_an_invalid_record() {
        let mut two = batch();
        two.extend(batch());
        assert_eq!(validate(&two, 1 << 20).unwrap_err().0, ErrorCode::InvalidRecord);
    }

    #[test]
    fn oversized_batches_are_message_too_large() {
        assert_eq!(validate(&batch(), 10).unwrap_err().0, ErrorCode::MessageTooLarge);
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(validate(&[1, 2, 3], 1 << 20).is_err());
        assert!(validate(&[], 1 << 20).is_err());
    }
}
