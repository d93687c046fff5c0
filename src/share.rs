//! Share groups (KIP-932, issue 19, ADR 0016): queues on Kafka topics.
//!
//! The pieces: a share-partition's records as a pure state machine (`partition`); a share
//! group's membership with the simple assignor and the broker's share sessions (`group`);
//! the share-partitions this broker leads, their sessions and their persister (`broker`);
//! the share coordinator of the `__share_group_state` partitions this broker leads
//! (`coordinator`), and that topic's records (`state`).

pub mod broker;
pub mod coordinator;
pub mod group;
pub mod partition;
pub mod state;
