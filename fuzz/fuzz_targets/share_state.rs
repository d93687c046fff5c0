#![no_main]
//! `__share_group_state` records (issue 19, ADR 0016 step 4), on the broker's own source
//! files: a record key and value as read back from a log file (the first byte is the
//! key's length; what follows the key is the value, none: a tombstone). A decoded snapshot is re-encoded and must
//! decode to itself, and is rebuilt into a share-partition, which is then driven through
//! acquire, acknowledge, expiry and a snapshot of its own. None may panic.

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

/// The broker's `crate::error`, for the included modules.
mod error {
    pub use strom_protocol::ErrorCode;
}

/// Stands in for the group coordinator's hash: only the codecs are fuzzed here.
mod coordinator {
    pub mod group {
        pub mod log {
            pub fn partition_for(_key: &str, _partitions: i32) -> i32 {
                0
            }
        }
    }
}

// At the crate root, so that `state.rs`'s `super::partition` is this `partition`.
#[allow(dead_code)]
#[path = "../../src/share/partition.rs"]
mod partition;

#[allow(dead_code)]
#[path = "../../src/share/state.rs"]
mod state;

use partition::{Limits, SharePartition, ACK_ACCEPT, ACK_RELEASE};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let (key, value) = rest.split_at(usize::from(n).min(rest.len()));
    let value = (!value.is_empty()).then_some(value);
    let key = Bytes::copy_from_slice(key);
    let value = value.map(Bytes::copy_from_slice);
    let Ok(Some((k, v))) = state::decode(&key, value.as_ref()) else { return };
    let again = state::decode_key(&state::encode_key(&k)).expect("an encoded key decodes");
    assert_eq!(again, Some(k));
    let Some(v) = v else { return };
    assert_eq!(state::decode_value(&state::encode_value(&v)).expect("an encoded value decodes"), v);
    let Ok(mut sp) = SharePartition::from_snapshot(Limits::new(1000, 3, 500), &v.snapshot) else { return };
    let start = sp.start();
    let from = sp.next_fetch_offset();
    let got = sp.acquire("m", 0, &[(from, from.saturating_add(99))], 50);
    if let Some(a) = got.first() {
        let _ = sp.acknowledge("m", 1, &[(a.first, a.last, vec![ACK_ACCEPT])]);
    }
    if let Some(a) = got.get(1) {
        let _ = sp.acknowledge("m", 1, &[(a.first, a.last, vec![ACK_RELEASE])]);
    }
    sp.expire(2000);
    assert!(sp.start() >= start);
    let snap = sp.snapshot();
    assert!(SharePartition::from_snapshot(Limits::new(1000, 3, 500), &snap).is_ok(), "own snapshot refused");
});
