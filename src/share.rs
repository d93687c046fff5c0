//! Share groups (KIP-932, issue 19, ADR 0016): queues on Kafka topics.
//!
//! Built in steps (ADR 0016, "Steps"). So far: the wire schemas of the four v1 APIs (in
//! `strom-protocol`, not yet advertised) and the pure state machines below: a
//! share-partition's records (`partition`), a share group's membership with the simple
//! assignor and the broker's share sessions (`group`). Wiring them into the group
//! coordinator and the ShareFetch/ShareAcknowledge handlers, and the durable state in
//! `__share_group_state`, come next.

pub mod broker;
pub mod coordinator;
pub mod group;
pub mod partition;
pub mod state;
