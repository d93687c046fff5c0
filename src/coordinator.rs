//! Coordinators: state machines over internal topics, running where their partition
//! is led (today: the group coordinator over `__consumer_offsets`).

pub mod group;
