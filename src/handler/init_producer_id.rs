//! InitProducerId (key 22): producer ids for idempotent producers.
//!
//! Idempotent producers (the default in the Java client and kafka-python) need an id
//! before they produce. Ids come from a persisted allocator and are never reused.
//! Sequence-number validation is not implemented yet; see issue "idempotent producer".
//! Transactional ids need a transaction coordinator, which Strom does not have yet, so
//! they are answered with COORDINATOR_NOT_AVAILABLE (FindCoordinator is not advertised
//! either, so transactional clients fail before they get here).

use strom_protocol::{InitProducerIdRequest, InitProducerIdResponse};

use super::ApiRange;
use crate::cluster::Cluster;
use crate::error::ErrorCode;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 22, min: 0, max: 5, advertised_min: 0 };

/// Allocates an id, or bumps the epoch of the one the producer already holds (v3+).
pub fn handle(cluster: &Cluster, _version: i16, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let err = |code: ErrorCode| InitProducerIdResponse { error_code: code.code(), ..Default::default() };
    if req.transactional_id.as_deref().is_some_and(|t| !t.is_empty()) {
        return err(ErrorCode::CoordinatorNotAvailable);
    }
    if req.producer_id >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return InitProducerIdResponse {
            producer_id: req.producer_id,
            producer_epoch: req.producer_epoch + 1,
            ..Default::default()
        };
    }
    match cluster.allocate_producer_id() {
        Ok(id) => InitProducerIdResponse { producer_id: id, producer_epoch: 0, ..Default::default() },
        Err(code) => err(code),
    }
}
