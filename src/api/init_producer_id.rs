//! InitProducerId (key 22): producer ids for idempotent producers.
//!
//! Idempotent producers (the default in the Java client, librdkafka and kafka-python)
//! need an id before they produce. Ids come from a persisted allocator and are never
//! reused. A producer that names its current id and epoch (v3+, KIP-360) gets the next
//! epoch of the same id; one naming an older epoch is fenced: PRODUCER_FENCED from v4,
//! INVALID_PRODUCER_EPOCH before (v4 added the code). Sequence checks happen per partition
//! in storage (ADR 0003). A transactional id goes to the transaction coordinator
//! (ADR 0012), which keeps one producer id per transactional id and bumps its epoch on
//! every InitProducerId, fencing the previous incarnation.

use strom_protocol::{InitProducerIdRequest, InitProducerIdResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 22, min: 0, max: 5, advertised_min: 0 };

/// Allocates an id, or bumps the epoch of the one the producer already holds (v3+).
pub async fn handle(node: &Node, az: &Authz<'_>, version: i16, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let err = |code: ErrorCode| InitProducerIdResponse {
        error_code: code.code(),
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    // Kafka: WRITE on the transactional id; an idempotent producer needs
    // IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679).
    let denied = match req.transactional_id.as_deref().filter(|t| !t.is_empty()) {
        Some(tid) => az.txn_id_error(op::WRITE, tid),
        None if az.sees(op::IDEMPOTENT_WRITE, resource::CLUSTER, super::authz::CLUSTER)
            || az.may_on_some(op::WRITE, resource::TOPIC) =>
        {
            ErrorCode::None
        }
        None => az.cluster_error(op::IDEMPOTENT_WRITE),
    };
    if denied != ErrorCode::None {
        return err(denied);
    }
    let result = match req.transactional_id.as_deref().filter(|t| !t.is_empty()) {
        Some(tid) => {
            node.txns.init_producer_id(tid, req.transaction_timeout_ms, req.producer_id, req.producer_epoch).await
        }
        None => node.meta.init_producer(req.producer_id, req.producer_epoch),
    };
    match result {
        Ok((producer_id, producer_epoch)) => {
            InitProducerIdResponse { producer_id, producer_epoch, ..Default::default() }
        }
        Err(ErrorCode::ProducerFenced) if version < 4 => err(ErrorCode::InvalidProducerEpoch),
        Err(code) => err(code),
    }
}
