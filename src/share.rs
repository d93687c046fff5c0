//! Share groups (KIP-932, issue 19, ADR 0016): queues on Kafka topics.
//!
//! Built in steps (ADR 0016, "Steps"). So far: the wire schemas of the four v1 APIs (in
//! `strom-protocol`, not yet advertised) and the share-partition state machine below. The
//! group coordinator's share groups, share sessions, the ShareFetch/ShareAcknowledge
//! handlers and the durable state in `__share_group_state` come next.

pub mod partition;
