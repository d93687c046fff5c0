//! Kafka's error codes live in `strom-protocol` (the client needs them too); the broker
//! uses them from here.

pub use strom_protocol::ErrorCode;
