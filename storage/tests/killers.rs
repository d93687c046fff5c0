//! Replays the on-disk killers of `fuzz/corpus-killers/` (segment scan, producer-state
//! snapshot, whole partition directories) through the same `harness` functions the fuzz
//! targets call: each must return without panicking.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus-killers").join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.expect("entry").path();
        f(&std::fs::read(&path).expect("read"));
        n += 1;
    }
    assert!(n > 0, "no killers for {target}");
}

#[test]
fn segment_killers_stop_the_scan_cleanly() {
    replay("segment_scan", strom_storage::harness::segment_scan);
}

#[test]
fn snapshot_killers_are_refused() {
    replay("producer_snapshot", strom_storage::harness::producer_snapshot);
}

#[test]
fn hostile_partition_directories_open_or_fail_without_panicking() {
    replay("log_dir", strom_storage::harness::log_dir);
}

#[test]
fn txn_index_killers_are_trimmed_on_open() {
    replay("txn_index", strom_storage::harness::txn_index);
}
