//! Coordinators: state machines over internal topics, running where their partition
//! is led (the group coordinator over `__consumer_offsets`, the transaction coordinator
//! over `__transaction_state`).

pub mod group;
pub mod txn;
