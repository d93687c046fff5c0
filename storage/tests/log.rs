//! Partition log behaviour: append/read, rolls, recovery, timestamps.

use std::fs;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use strom_protocol::records::{split_batches, BatchBuilder, BatchHeader, Record};
use strom_storage::{Error, Log, LogConfig};

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig { segment_bytes, index_interval_bytes: 200, segment_index_bytes: 4096, ..LogConfig::default() }
}

/// A batch of `records` records with values of `value_len` bytes, whose
/// max timestamp is `ts`.
fn batch(records: usize, value_len: usize, ts: i64) -> BytesMut {
    let mut b = BatchBuilder::new(ts - records as i64 + 1);
    for i in 0..records {
        b.push(&Record {
            offset_delta: i as i32,
            timestamp_delta: i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; value_len])),
            headers: vec![],
        });
    }
    b.build()
}

/// What the log stores for `b`: the batch with its base offset and leader epoch set.
fn stored(b: &mut [u8], base_offset: i64, epoch: i32) {
    strom_protocol::records::set_base_offset(b, base_offset).unwrap();
    strom_protocol::records::set_partition_leader_epoch(b, epoch).unwrap();
}

/// Appends `count` batches of varying shape; returns the stored (patched)
/// bytes of each.
fn fill(log: &mut Log, count: usize, first_ts: i64) -> Vec<Bytes> {
    (0..count)
        .map(|i| {
            let mut b = batch(1 + i % 4, 10 + (i * 37) % 150, first_ts + i as i64);
            let info = log.append(&b, 3).unwrap();
            stored(&mut b, info.base_offset, 3);
            b.freeze()
        })
        .collect()
}

/// Every batch in the log, read sequentially.
fn read_all(log: &Log) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1000).unwrap().data;
        assert!(!data.is_empty(), "empty read at {offset}");
        for range in split_batches(&data) {
            let range = range.unwrap();
            let b = data.slice(range);
            offset = BatchHeader::parse(&b).unwrap().last_offset() + 1;
            out.push(b);
        }
    }
    out
}

fn base(b: &[u8]) -> i64 {
    BatchHeader::parse(b).unwrap().base_offset
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn active_log_file(dir: &Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

#[test]
fn appended_batches_read_back_byte_identical_with_patched_offsets_across_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(2048)).unwrap();
    let written = fill(&mut log, 150, 1000);
    assert!(log.segment_count() > 5, "segments: {}", log.segment_count());
    let mut next = 0;
    for b in &written {
        let h = BatchHeader::parse(b).unwrap();
        assert_eq!(h.base_offset, next);
        assert_eq!(h.partition_leader_epoch, 3);
        strom_protocol::records::verify_crc(b).unwrap();
        next = h.last_offset() + 1;
    }
    assert_eq!(log.log_end_offset(), next);
    assert_eq!(read_all(&log), written);
    assert_eq!(log.size_bytes(), written.iter().map(|b| b.len() as u64).sum::<u64>());
    // Every offset, including ones inside a batch, finds its batch.
    for b in &written {
        let h = BatchHeader::parse(b).unwrap();
        for offset in h.base_offset..=h.last_offset() {
            let data = log.read(offset, 1).unwrap().data;
            assert_eq!(data, b, "offset {offset}");
        }
    }
}

#[test]
fn first_batch_larger_than_max_bytes_is_returned_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let written = fill(&mut log, 10, 0);
    let r = log.read(0, 0).unwrap();
    assert_eq!(r.data, written[0]);
    let two = written[1].len() + written[2].len();
    let r = log.read(base(&written[1]), two + written[3].len() - 1).unwrap();
    assert_eq!(r.data, [written[1].clone(), written[2].clone()].concat());
    assert_eq!(r.log_end_offset, log.log_end_offset());
}

#[test]
fn offsets_outside_the_log_are_out_of_range_and_the_end_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(log.read(0, 100).unwrap().data.is_empty());
    fill(&mut log, 3, 0);
    let leo = log.log_end_offset();
    assert!(log.read(leo, 100).unwrap().data.is_empty());
    assert!(matches!(
        log.read(leo + 1, 100),
        Err(Error::OffsetOutOfRange { offset, start: 0, end }) if offset == leo + 1 && end == leo
    ));
    assert!(matches!(log.read(-1, 100), Err(Error::OffsetOutOfRange { .. })));
}

#[test]
fn invalid_batches_are_rejected_and_leave_the_log_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(4096)).unwrap();
    fill(&mut log, 2, 0);
    let leo = log.log_end_offset();

    let mut flipped = batch(2, 10, 5);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(log.append(&flipped, 0), Err(Error::InvalidBatch(_))));

    let mut longer = batch(1, 10, 5);
    longer.extend_from_slice(&[0]);
    assert!(matches!(log.append(&longer, 0), Err(Error::InvalidBatch(_))));

    let huge = batch(1, 5000, 5);
    assert!(matches!(log.append(&huge, 0), Err(Error::BatchTooLarge { .. })));

    assert!(log.append(&BytesMut::from(&b"short"[..]), 0).is_err());
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(&log).len(), 2);
}

#[test]
fn reads_are_zero_copy_and_outlive_rolls_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(2048)).unwrap();
    let written = fill(&mut log, 3, 0);
    let a = log.read(0, 10_000).unwrap().data;
    let b = log.read(0, 10_000).unwrap().data;
    assert_eq!(a.as_ptr(), b.as_ptr(), "both reads share the mapping");
    fill(&mut log, 40, 100); // rolls: the first segment is trimmed and remapped
    log.close().unwrap();
    assert_eq!(a, written.concat());
}

#[test]
fn reopen_after_clean_close_gives_identical_reads_and_trimmed_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(2048)).unwrap();
    let written = fill(&mut log, 60, 0);
    let leo = log.log_end_offset();
    log.close().unwrap();
    let total: u64 = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(total, written.iter().map(|b| b.len() as u64).sum::<u64>());

    let mut log = Log::open(dir.path(), config(2048)).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(&log), written);
    let more = fill(&mut log, 5, 100);
    assert_eq!(base(&more[0]), leo);
}

#[test]
fn reopen_after_unclean_stop_discards_the_preallocated_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(8192)).unwrap();
    let written = fill(&mut log, 30, 0);
    let leo = log.log_end_offset();
    std::mem::forget(log); // no close, no Drop: files stay preallocated
    assert_eq!(fs::metadata(active_log_file(dir.path())).unwrap().len(), 8192);

    let mut log = Log::open(dir.path(), config(8192)).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(&log), written);
    let more = fill(&mut log, 3, 100);
    assert_eq!(base(&more[0]), leo);
    log.close().unwrap();
    let log = Log::open(dir.path(), config(8192)).unwrap();
    assert_eq!(read_all(&log), [written, more].concat());
}

#[test]
fn truncating_the_active_segment_anywhere_in_its_last_two_batches_keeps_the_valid_prefix() {
    let src = tempfile::tempdir().unwrap();
    let mut log = Log::open(src.path(), config(1 << 20)).unwrap();
    let written = fill(&mut log, 12, 0);
    log.close().unwrap();
    let n = written.len();
    let prefix_len = |k: usize| written[..k].iter().map(|b| b.len()).sum::<usize>();
    let end_of = |k: usize| {
        if k == 0 {
            0
        } else {
            BatchHeader::parse(&written[k - 1]).unwrap().last_offset() + 1
        }
    };
    let original = written.concat();
    for cut in prefix_len(n - 2)..=prefix_len(n) {
        for zero_tail in [false, true] {
            // Whole batches below the cut survive; with a zero tail, so does a
            // batch whose cut-off bytes happened to be zeros (it is intact).
            let keep = (0..=n)
                .rev()
                .find(|&k| {
                    let end = prefix_len(k);
                    end <= cut || (zero_tail && original[cut..end].iter().all(|&b| b == 0))
                })
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            copy_dir(src.path(), dir.path());
            let file = fs::OpenOptions::new().write(true).open(active_log_file(dir.path())).unwrap();
            file.set_len(cut as u64).unwrap();
            if zero_tail {
                file.set_len(1 << 20).unwrap();
            }
            drop(file);
            let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
            assert_eq!(log.log_end_offset(), end_of(keep), "cut {cut}");
            assert_eq!(read_all(&log), written[..keep], "cut {cut}");
            let more = fill(&mut log, 2, 50);
            assert_eq!(base(&more[0]), end_of(keep));
            assert_eq!(read_all(&log), [&written[..keep], &more[..]].concat());
        }
    }
}

#[test]
fn a_flipped_bit_in_the_last_batch_drops_it_on_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    let written = fill(&mut log, 5, 0);
    log.close().unwrap();
    let path = active_log_file(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() - written[4].len() + 40; // inside the CRC range
    bytes[at] ^= 0x10;
    fs::write(&path, bytes).unwrap();
    let log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(read_all(&log), written[..4]);
    assert_eq!(log.log_end_offset(), BatchHeader::parse(&written[3]).unwrap().last_offset() + 1);
}

#[test]
fn deleted_or_garbled_index_files_are_rebuilt_and_lookups_stay_correct() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(2048)).unwrap();
    let written = fill(&mut log, 80, 1000);
    log.close().unwrap();
    let mut indexes: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "index" || e == "timeindex"))
        .collect();
    indexes.sort();
    assert!(indexes.len() >= 8);
    fs::remove_file(&indexes[0]).unwrap(); // missing
    fs::write(&indexes[1], [0xffu8; 24]).unwrap(); // garbage, whole entries
    fs::write(&indexes[2], [1u8; 13]).unwrap(); // not a whole number of entries
    fs::write(&indexes[3], [0u8; 96]).unwrap(); // preallocated zeros
    fs::write(&indexes[4], []).unwrap(); // emptied time index

    let log = Log::open(dir.path(), config(2048)).unwrap();
    assert_eq!(read_all(&log), written);
    for b in &written {
        let h = BatchHeader::parse(b).unwrap();
        assert_eq!(log.read(h.last_offset(), 1).unwrap().data, b);
        assert_eq!(log.offset_for_timestamp(h.max_timestamp).unwrap(), Some((h.base_offset, h.max_timestamp)));
    }
}

#[test]
fn offset_for_timestamp_returns_the_first_batch_reaching_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(2048)).unwrap();
    // Timestamps go up and down, like producers with skewed clocks.
    let written: Vec<Bytes> = (0..90)
        .map(|i: i64| {
            let ts = 1000 + (i * 7919) % 500 + i;
            let mut b = batch(1 + (i as usize) % 3, 40, ts);
            let info = log.append(&b, 0).unwrap();
            stored(&mut b, info.base_offset, 0);
            b.freeze()
        })
        .collect();
    let headers: Vec<_> = written.iter().map(|b| BatchHeader::parse(b).unwrap()).collect();
    let expect = |ts: i64| headers.iter().find(|h| h.max_timestamp >= ts).map(|h| (h.base_offset, h.max_timestamp));
    let max = headers.iter().map(|h| h.max_timestamp).max().unwrap();
    let first_max = headers.iter().find(|h| h.max_timestamp == max).unwrap();
    let check = |log: &Log| {
        for ts in (900..max + 3).step_by(3).chain([i64::MIN, max, max + 1]) {
            assert_eq!(log.offset_for_timestamp(ts).unwrap(), expect(ts), "ts {ts}");
        }
        assert_eq!(log.max_timestamp(), Some((max, first_max.base_offset)));
    };
    check(&log);
    log.close().unwrap();
    let log = Log::open(dir.path(), config(2048)).unwrap();
    check(&log);
    drop(log);
    let empty = tempfile::tempdir().unwrap();
    let log = Log::open(empty.path(), config(2048)).unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(log.max_timestamp(), None);
}

#[test]
fn stray_files_are_ignored_and_bad_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("leader-epoch-checkpoint"), b"0\n").unwrap();
    fs::write(dir.path().join("123.log"), b"junk").unwrap();
    let mut log = Log::open(dir.path(), config(4096)).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    fill(&mut log, 2, 0);
    assert!(dir.path().join("leader-epoch-checkpoint").exists());
    let bad = LogConfig { segment_bytes: 10, ..LogConfig::default() };
    assert!(matches!(Log::open(dir.path(), bad), Err(Error::InvalidConfig(_))));
}

#[test]
fn garbage_in_the_last_segment_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{:020}.log", 0));
    let mut junk = batch(2, 10, 0).to_vec();
    junk.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    fs::write(&path, &junk).unwrap();
    let mut log = Log::open(dir.path(), config(1 << 16)).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    fill(&mut log, 1, 0);
    assert_eq!(read_all(&log).len(), 2);
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_len: usize,
        ts: i64,
    },
    ReopenClean,
    ReopenUnclean,
    /// A broker's clean stop (marker written): the last segment is reopened with its
    /// indexes, not rescanned.
    ReopenAfterShutdown,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        8 => (1usize..6, 0usize..300, 0i64..1000)
            .prop_map(|(records, value_len, ts)| Op::Append { records, value_len, ts }),
        1 => Just(Op::ReopenClean),
        1 => Just(Op::ReopenUnclean),
        1 => Just(Op::ReopenAfterShutdown),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    #[test]
    fn random_appends_and_reopens_match_an_in_memory_model(
        ops in proptest::collection::vec(op(), 1..60),
        segment_bytes in 1500u64..6000,
        interval in 0u64..800,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { segment_bytes, index_interval_bytes: interval, segment_index_bytes: 64, ..LogConfig::default() };
        let mut log = Log::open(dir.path(), cfg.clone()).unwrap();
        let mut model: Vec<Bytes> = Vec::new();
        for op in ops {
            match op {
                Op::Append { records, value_len, ts } => {
                    let mut b = batch(records, value_len, ts);
                    if b.len() as u64 > segment_bytes {
                        // The generator can exceed a small segment; such a batch is refused whole.
                        let refused = matches!(log.append(&b, 1), Err(Error::BatchTooLarge { .. }));
                        proptest::prop_assert!(refused);
                        continue;
                    }
                    let info = log.append(&b, 1).unwrap();
                    stored(&mut b, info.base_offset, 1);
                    model.push(b.freeze());
                }
                Op::ReopenClean => {
                    log.close().unwrap();
                    log = Log::open(dir.path(), cfg.clone()).unwrap();
                }
                Op::ReopenUnclean => {
                    std::mem::forget(log);
                    log = Log::open(dir.path(), cfg.clone()).unwrap();
                }
                Op::ReopenAfterShutdown => {
                    log.shutdown().unwrap();
                    drop(log);
                    log = Log::open(dir.path(), cfg.clone()).unwrap();
                    proptest::prop_assert!(log.opened_clean());
                }
            }
        }
        proptest::prop_assert_eq!(read_all(&log), model.clone());
        for b in &model {
            let h = BatchHeader::parse(b).unwrap();
            proptest::prop_assert_eq!(&log.read(h.base_offset, 0).unwrap().data, b);
            let expect = model
                .iter()
                .map(|b| BatchHeader::parse(b).unwrap())
                .find(|x| x.max_timestamp >= h.max_timestamp)
                .map(|x| (x.base_offset, x.max_timestamp));
            proptest::prop_assert_eq!(log.offset_for_timestamp(h.max_timestamp).unwrap(), expect);
        }
    }
}

/// An idempotent batch of `records` records from producer 7, epoch 0.
fn idempotent(seq: i32, records: usize) -> BytesMut {
    let mut b = BatchBuilder::new(strom_storage::now_ms()).producer(7, 0, seq);
    for i in 0..records {
        b.add(None, Some(format!("v{seq}-{i}").as_bytes()));
    }
    b.build()
}

fn snapshots(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_retried_idempotent_batch_is_deduplicated_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    log.append(&idempotent(0, 3), 0).unwrap();
    let first = log.append(&idempotent(3, 2), 0).unwrap();
    assert_eq!((first.base_offset, first.duplicate), (3, false));
    // kill -9: no clean close, no snapshot; the bytes are in the page cache.
    std::mem::forget(log);
    assert!(snapshots(dir.path()).is_empty());

    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    let retry = log.append(&idempotent(3, 2), 0).unwrap();
    assert_eq!((retry.base_offset, retry.last_offset, retry.duplicate), (3, 4, true));
    assert_eq!(log.log_end_offset(), 5, "the retry appended nothing");
    assert!(matches!(log.append(&idempotent(9, 1), 0), Err(Error::Sequence(_))));
    assert_eq!(log.append(&idempotent(5, 1), 0).unwrap().base_offset, 5);
}

#[test]
fn producer_state_is_snapshotted_on_roll_and_close_and_rebuilt_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(600)).unwrap();
    let mut seq = 0;
    for _ in 0..20 {
        log.append(&idempotent(seq, 2), 0).unwrap();
        seq += 2;
    }
    assert!(log.segment_count() > 2);
    let names = snapshots(dir.path());
    assert_eq!(names.len(), 2, "only the newest two are kept: {names:?}");
    log.close().unwrap();
    let names = snapshots(dir.path());
    assert_eq!(names.last().unwrap(), &format!("{:020}.snapshot", 40));

    let mut log = Log::open(dir.path(), config(600)).unwrap();
    let entry = log.producer_state().entry(7, strom_storage::now_ms()).unwrap().clone();
    assert_eq!(entry.batches.len(), 5);
    assert_eq!(entry.batches.back().unwrap().last_seq, 39);
    assert!(log.append(&idempotent(38, 2), 0).unwrap().duplicate);
    assert!(!log.append(&idempotent(40, 1), 0).unwrap().duplicate);
}

#[test]
fn snapshots_beyond_the_recovered_log_end_are_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    log.append(&idempotent(0, 2), 0).unwrap();
    log.close().unwrap();
    // A snapshot claiming offsets the log does not have (its data was a torn tail),
    // and a damaged one.
    fs::copy(dir.path().join(format!("{:020}.snapshot", 2)), dir.path().join(format!("{:020}.snapshot", 50))).unwrap();
    fs::write(dir.path().join(format!("{:020}.snapshot", 2)), b"garbage").unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert!(snapshots(dir.path()).is_empty());
    // Rebuilt by replaying the log from its start instead.
    assert!(log.append(&idempotent(0, 2), 0).unwrap().duplicate);
}

#[test]
fn delete_records_moves_the_start_durably_and_drops_whole_segments_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = strom_storage::LogConfig { segment_bytes: 4096, ..Default::default() };
    let mut log = strom_storage::Log::open(dir.path(), config.clone()).unwrap();
    for i in 0..200 {
        let mut b = strom_protocol::records::BatchBuilder::new(1_000 + i);
        b.add(Some(b"k"), Some(&[7u8; 100]));
        log.append(&b.build(), 0).unwrap();
    }
    let segments_before = log.segment_count();
    assert!(segments_before > 3);
    assert!(log.delete_records_before(201).is_err(), "beyond the end");
    assert_eq!(log.delete_records_before(150).unwrap(), 150);
    assert_eq!(log.log_start_offset(), 150);
    assert!(log.segment_count() < segments_before, "whole segments below the start are gone");
    assert!(log.read(149, 1 << 20).is_err());
    assert!(!log.read(150, 1 << 20).unwrap().data.is_empty());
    assert_eq!(log.delete_records_before(10).unwrap(), 150, "moving backwards is a no-op");
    drop(log);
    let log = strom_storage::Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_start_offset(), 150, "the start offset survives a restart");
    assert_eq!(log.log_end_offset(), 200);
}

#[test]
fn retention_deletes_old_and_excess_sealed_segments_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = strom_storage::LogConfig { segment_bytes: 2048, ..Default::default() };
    let mut log = strom_storage::Log::open(dir.path(), config).unwrap();
    // 100 batches of ~170 bytes: timestamps 1000..1099 ms.
    for i in 0..100 {
        let mut b = strom_protocol::records::BatchBuilder::new(1_000 + i);
        b.add(Some(b"k"), Some(&[1u8; 100]));
        log.append(&b.build(), 0).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments >= 8, "{segments}");
    // Nothing is older than 10 s before t=1100: nothing goes.
    assert_eq!(log.apply_retention(1_100, 10_000, -1).unwrap(), 0);
    // Records older than t=1050 go, segment by segment; the start offset moves to a batch boundary.
    let gone = log.apply_retention(1_100, 50, -1).unwrap();
    assert!(gone > 0 && gone < segments);
    let start = log.log_start_offset();
    assert!(start > 0 && start <= 51, "start {start}");
    assert!(log.read(start - 1, 1).is_err());
    // Size retention keeps the log under the limit, but the active segment always stays.
    log.apply_retention(1_100, -1, 0).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), 100);
}

#[test]
fn segment_ms_rolls_an_old_active_segment_on_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let config = strom_storage::LogConfig { segment_ms: 1, ..Default::default() };
    let mut log = strom_storage::Log::open(dir.path(), config).unwrap();
    let mut b = strom_protocol::records::BatchBuilder::new(1);
    b.add(None, Some(b"v"));
    log.append_at(&b.build(), 0, strom_storage::now_ms()).unwrap();
    let later = strom_storage::now_ms() + 10;
    log.append_at(&b.build(), 0, later).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn compaction_keeps_the_latest_record_per_key_without_renumbering() {
    use std::collections::HashMap;
    let dir = tempfile::tempdir().unwrap();
    let config = strom_storage::LogConfig { segment_bytes: 4096, ..Default::default() };
    let mut log = strom_storage::Log::open(dir.path(), config.clone()).unwrap();
    let mut want: HashMap<Vec<u8>, (i64, Option<Vec<u8>>)> = HashMap::new();
    let now = 1_000_000;
    for i in 0..1000i64 {
        let key = format!("key-{}", i % 50).into_bytes();
        // Key 7's last write is an old tombstone; key 9's a fresh one.
        let (ts, value) = match i {
            957 => (now - 100_000, None),
            959 => (now, None),
            _ => (now - 200_000 + i, Some(format!("v{i}").into_bytes())),
        };
        let mut b = strom_protocol::records::BatchBuilder::new(ts);
        b.add(Some(&key), value.as_deref());
        let info = log.append(&b.build(), 0).unwrap();
        want.insert(key, (info.base_offset, value));
    }
    let (before, after) = log.compact(now, 50_000).unwrap();
    assert!(after < before / 5, "{before} records before, {after} after");
    assert_eq!(log.log_end_offset(), 1000, "offsets are not renumbered");
    // Read everything back: strictly increasing offsets, and every surviving keyed record
    // is its key's latest (the active segment is not rewritten, so it may add more).
    let mut offsets = Vec::new();
    let mut seen: HashMap<Vec<u8>, (i64, Option<Vec<u8>>)> = HashMap::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let data = log.read(next, 1 << 20).unwrap().data;
        for range in strom_protocol::records::split_batches(&data) {
            let batch = data.slice(range.unwrap());
            strom_protocol::records::verify_crc(&batch).unwrap();
            let h = strom_protocol::records::BatchHeader::parse(&batch).unwrap();
            for r in strom_protocol::records::decode_records(&batch).unwrap() {
                let off = h.base_offset + i64::from(r.offset_delta);
                offsets.push(off);
                seen.insert(r.key.unwrap().to_vec(), (off, r.value.map(|v| v.to_vec())));
            }
            next = h.last_offset() + 1;
        }
    }
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets strictly increase");
    for (k, (off, v)) in &want {
        if k == b"key-7" {
            assert!(!seen.contains_key(k), "an old tombstone is removed with its key");
            continue;
        }
        assert_eq!(seen.get(k), Some(&(*off, v.clone())), "{}", String::from_utf8_lossy(k));
    }
    // Reopening finds the same compacted log.
    drop(log);
    let log = strom_storage::Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), 1000);
}

#[test]
fn a_leftover_cleaned_file_is_removed_and_the_original_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = strom_storage::Log::open(dir.path(), strom_storage::LogConfig::default()).unwrap();
    let mut b = strom_protocol::records::BatchBuilder::new(1);
    b.add(Some(b"k"), Some(b"v"));
    log.append(&b.build(), 0).unwrap();
    drop(log);
    std::fs::write(dir.path().join("00000000000000000000.log.cleaned"), b"half written").unwrap();
    let log = strom_storage::Log::open(dir.path(), strom_storage::LogConfig::default()).unwrap();
    assert!(!dir.path().join("00000000000000000000.log.cleaned").exists());
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn a_clean_shutdown_marks_the_log_and_a_crash_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let append = |log: &mut strom_storage::Log| {
        let mut b = strom_protocol::records::BatchBuilder::new(1);
        b.add(Some(b"k"), Some(b"v"));
        log.append(&b.build(), 0).unwrap();
    };
    let mut log = strom_storage::Log::open(dir.path(), strom_storage::LogConfig::default()).unwrap();
    append(&mut log);
    log.shutdown().unwrap();
    drop(log);
    let log = strom_storage::Log::open(dir.path(), strom_storage::LogConfig::default()).unwrap();
    assert!(log.opened_clean());
    // Nothing written since the clean close: a crash now leaves the log as it was shut
    // down, and the marker may be trusted again.
    assert!(dir.path().join("clean-shutdown").exists());
    std::mem::forget(log);
    let mut log = strom_storage::Log::open(dir.path(), strom_storage::LogConfig::default()).unwrap();
    assert!(log.opened_clean());
    append(&mut log);
    assert!(!dir.path().join("clean-shutdown").exists(), "the first write removes the marker");
    assert_eq!(log.log_end_offset(), 2);
    std::mem::forget(log); // a crash: no shutdown
    let log = strom_storage::Log::open(dir.path(), strom_storage::LogConfig::default()).unwrap();
    assert!(!log.opened_clean());
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn batches_after_the_recovery_point_are_still_verified() {
    let dir = tempfile::tempdir().unwrap();
    let config = strom_storage::LogConfig::default();
    let mut log = strom_storage::Log::open(dir.path(), config.clone()).unwrap();
    for i in 0..3 {
        let mut b = strom_protocol::records::BatchBuilder::new(1);
        b.add(Some(b"k"), Some(format!("value-{i}").as_bytes()));
        log.append(&b.build(), 0).unwrap();
    }
    log.checkpoint_recovery_point(2).unwrap();
    std::mem::forget(log);
    // Flip the last byte of the last batch (offset 2, after the recovery point).
    let seg = dir.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap();
    bytes[end] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let log = strom_storage::Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), 2, "the corrupt batch past the recovery point is cut");
}

#[derive(Debug, Clone)]
enum RecordOp {
    Append { records: usize, keys: u8 },
    Retention { max_bytes: u64 },
    DeleteRecords { fraction: u8 },
    Compact,
    ReopenClean,
    ReopenUnclean,
}

fn record_op() -> impl proptest::strategy::Strategy<Value = RecordOp> {
    use proptest::prelude::*;
    prop_oneof![
        10 => (1usize..8, 1u8..12).prop_map(|(records, keys)| RecordOp::Append { records, keys }),
        1 => (0u64..20_000).prop_map(|max_bytes| RecordOp::Retention { max_bytes }),
        1 => (0u8..=100).prop_map(|fraction| RecordOp::DeleteRecords { fraction }),
        2 => Just(RecordOp::Compact),
        1 => Just(RecordOp::ReopenClean),
        1 => Just(RecordOp::ReopenUnclean),
    ]
}

/// Every record in the log as (offset, key, value), checking offsets strictly increase.
/// Reads return whole batches, so records of the first batch below the log start offset
/// (moved inside it by DeleteRecords) are skipped, as consumers skip them.
fn records_of(log: &Log) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
    let start = log.log_start_offset();
    let mut out: Vec<(i64, Vec<u8>, Vec<u8>)> = Vec::new();
    for b in read_all(log) {
        let h = BatchHeader::parse(&b).unwrap();
        strom_protocol::records::verify_crc(&b).unwrap();
        for r in strom_protocol::records::decode_records(&b).unwrap() {
            let off = h.base_offset + i64::from(r.offset_delta);
            if off < start {
                continue;
            }
            assert!(out.last().is_none_or(|l| l.0 < off), "offsets strictly increase");
            out.push((off, r.key.unwrap().to_vec(), r.value.unwrap().to_vec()));
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    #[test]
    fn random_appends_retention_truncation_compaction_and_reopens_match_a_record_model(
        ops in proptest::collection::vec(record_op(), 1..50),
        segment_bytes in 1200u64..4000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { segment_bytes, index_interval_bytes: 300, segment_index_bytes: 240, ..LogConfig::default() };
        let mut log = Log::open(dir.path(), cfg.clone()).unwrap();
        let mut model: Vec<(i64, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut next_value = 0u64;
        for op in ops {
            let start_before = log.log_start_offset();
            let end_before = log.log_end_offset();
            match op {
                RecordOp::Append { records, keys } => {
                    let mut b = BatchBuilder::new(1_000);
                    let mut added = Vec::new();
                    for i in 0..records {
                        let key = format!("k{}", (next_value as usize + i) % usize::from(keys)).into_bytes();
                        let value = format!("v{}", next_value + i as u64).into_bytes();
                        b.add(Some(&key), Some(&value));
                        added.push((key, value));
                    }
                    next_value += records as u64;
                    let info = log.append(&b.build(), 0).unwrap();
                    for (i, (k, v)) in added.into_iter().enumerate() {
                        model.push((info.base_offset + i as i64, k, v));
                    }
                }
                RecordOp::Retention { max_bytes } => {
                    log.apply_retention(2_000, -1, max_bytes as i64).unwrap();
                    proptest::prop_assert!(log.log_start_offset() >= start_before);
                    proptest::prop_assert_eq!(log.log_end_offset(), end_before);
                    let start = log.log_start_offset();
                    model.retain(|r| r.0 >= start);
                }
                RecordOp::DeleteRecords { fraction } => {
                    let target = start_before + (end_before - start_before) * i64::from(fraction) / 100;
                    let start = log.delete_records_before(target).unwrap();
                    proptest::prop_assert_eq!(start, target.max(start_before));
                    model.retain(|r| r.0 >= start);
                }
                RecordOp::Compact => {
                    log.compact(2_000, 0).unwrap();
                    let got = records_of(&log);
                    let latest: std::collections::HashMap<&Vec<u8>, i64> = model.iter().map(|r| (&r.1, r.0)).collect();
                    // Only superseded records may go; every key's latest record stays.
                    for r in &model {
                        if !got.contains(r) {
                            proptest::prop_assert!(latest[&r.1] > r.0, "record {} removed but it was its key's latest", r.0);
                        }
                    }
                    proptest::prop_assert!(got.iter().all(|r| model.contains(r)), "compaction invented records");
                    proptest::prop_assert_eq!(log.log_end_offset(), end_before, "no renumbering");
                    model = got;
                }
                RecordOp::ReopenClean => {
                    log.shutdown().unwrap();
                    drop(log);
                    log = Log::open(dir.path(), cfg.clone()).unwrap();
                }
                RecordOp::ReopenUnclean => {
                    std::mem::forget(log);
                    log = Log::open(dir.path(), cfg.clone()).unwrap();
                }
            }
            proptest::prop_assert_eq!(records_of(&log), model.clone());
        }
    }
}

#[test]
fn rebuilt_indexes_are_byte_identical_to_the_ones_built_while_appending() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(2048)).unwrap();
    fill(&mut log, 80, 1000);
    log.close().unwrap();
    let index_files = || {
        let mut v: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "index" || e == "timeindex"))
            .collect();
        v.sort();
        v
    };
    let built: Vec<(std::path::PathBuf, Vec<u8>)> =
        index_files().into_iter().map(|p| (p.clone(), fs::read(&p).unwrap())).collect();
    assert!(built.len() >= 8);
    for (p, _) in &built {
        fs::remove_file(p).unwrap();
    }
    // Reopening rebuilds every index from the logs; a clean close seals them again.
    Log::open(dir.path(), config(2048)).unwrap().close().unwrap();
    for (p, bytes) in &built {
        assert_eq!(&fs::read(p).unwrap(), bytes, "{} differs from the one built while appending", p.display());
    }
}

#[test]
fn a_log_file_truncated_by_another_process_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(2048)).unwrap();
    fill(&mut log, 30, 1000);
    let first = dir.path().join("00000000000000000000.log");
    fs::OpenOptions::new().write(true).open(&first).unwrap().set_len(10).unwrap();
    assert!(log.read(0, 1 << 20).is_err());
}

#[test]
fn truncate_to_drops_whole_batches_from_the_one_holding_the_offset_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1024)).unwrap();
    let batches = fill(&mut log, 40, 1_000);
    assert!(log.segment_count() > 3, "the test needs several segments");
    let end = log.log_end_offset();
    // Beyond the end: nothing happens.
    assert_eq!(log.truncate_to(end + 5).unwrap(), end);
    // Into the middle of a batch in an early segment: that batch and all later go.
    let cut = batches.len() / 3;
    let target = base(&batches[cut]) + 1;
    let new_end = log.truncate_to(target).unwrap();
    let want_end = base(&batches[cut]);
    assert_eq!(new_end, want_end, "the batch holding the offset goes whole");
    assert_eq!(log.log_end_offset(), want_end);
    assert_eq!(read_all(&log), batches[..cut].to_vec(), "everything before is byte-identical");
    // Appends continue at the new end, and all of it survives an unclean reopen.
    let mut b = batch(2, 20, 9_999);
    let info = log.append(&b, 7).unwrap();
    assert_eq!(info.base_offset, want_end);
    stored(&mut b, want_end, 7);
    drop(log);
    let log = Log::open(dir.path(), config(1024)).unwrap();
    let mut want = batches[..cut].to_vec();
    want.push(b.freeze());
    assert_eq!(read_all(&log), want);
    // Below the log start is refused.
    let mut log = log;
    log.delete_records_before(base(&batches[2])).unwrap();
    assert!(matches!(log.truncate_to(0), Err(Error::OffsetOutOfRange { .. })));
    // To a segment's base offset: that segment is emptied, earlier ones stay.
    let at = base(&batches[cut / 2]);
    assert_eq!(log.truncate_to(at).unwrap(), at);
    assert_eq!(read_all(&log), batches[2..cut / 2].to_vec());
}

#[test]
fn reset_to_empties_the_log_and_starts_it_again_at_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1024)).unwrap();
    fill(&mut log, 20, 1_000);
    log.reset_to(500).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
    assert!(read_all(&log).is_empty());
    let mut b = batch(3, 10, 5_000);
    assert_eq!(log.append(&b, 2).unwrap().base_offset, 500);
    stored(&mut b, 500, 2);
    // Survives an unclean reopen: same start, the one batch.
    drop(log);
    let log = Log::open(dir.path(), config(1024)).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 503));
    assert_eq!(read_all(&log), vec![b.freeze()]);
}

/// A leader log holding `epochs.len()` batches of 2 records, the i-th written at leader
/// epoch `epochs[i]`, rolling often; returns it with its stored batches.
fn leader_log(dir: &Path, epochs: &[i32]) -> (Log, Vec<Bytes>) {
    let mut log = Log::open(dir, config(1024)).unwrap();
    for (i, &epoch) in epochs.iter().enumerate() {
        log.append(&batch(2, 60 + i % 7, 1_000 + i as i64), epoch).unwrap();
    }
    let batches = read_all(&log);
    (log, batches)
}

#[test]
fn append_replicated_copies_the_leaders_batches_byte_for_byte_across_rolls() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let epochs: Vec<i32> = (0..30).map(|i| [0, 0, 2, 2, 5][i % 5] + 10 * (i as i32 / 5)).collect();
    let (leader, batches) = leader_log(a.path(), &epochs);
    assert!(leader.segment_count() > 3, "the test needs several segments");
    let mut follower = Log::open(b.path(), config(1024)).unwrap();
    for (i, batch) in batches.iter().enumerate() {
        let info = follower.append_replicated(batch, strom_storage::now_ms()).unwrap();
        let h = BatchHeader::parse(batch).unwrap();
        assert_eq!(
            (info.base_offset, info.last_offset, info.bytes, info.duplicate),
            (h.base_offset, h.last_offset(), batch.len(), false)
        );
        assert_eq!(h.partition_leader_epoch, epochs[i], "the leader's epoch is kept");
    }
    assert!(follower.segment_count() > 3, "the follower rolls too");
    assert_eq!(read_all(&follower), batches, "same bytes, offsets and epochs");
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    drop(follower);
    let follower = Log::open(b.path(), config(1024)).unwrap();
    assert_eq!(read_all(&follower), batches, "and it survives a reopen");
}

#[test]
fn append_replicated_refuses_a_batch_not_at_the_log_end_or_invalid() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_leader, batches) = leader_log(a.path(), &[0, 0, 1]);
    let mut follower = Log::open(b.path(), config(1024)).unwrap();
    // A gap: the first batch is missing.
    assert!(matches!(
        follower.append_replicated(&batches[1], 0),
        Err(Error::UnexpectedBaseOffset { base_offset: 2, log_end_offset: 0 })
    ));
    follower.append_replicated(&batches[0], 0).unwrap();
    follower.append_replicated(&batches[1], 0).unwrap();
    // An overlap: the batch is already there.
    assert!(matches!(
        follower.append_replicated(&batches[0], 0),
        Err(Error::UnexpectedBaseOffset { base_offset: 0, log_end_offset: 4 })
    ));
    let mut corrupt = batches[2].to_vec();
    *corrupt.last_mut().unwrap() ^= 1;
    assert!(matches!(follower.append_replicated(&corrupt, 0), Err(Error::InvalidBatch(_))));
    assert!(matches!(follower.append_replicated(&batches[2][..70], 0), Err(Error::InvalidBatch(_))));
    assert_eq!(follower.log_end_offset(), 4, "nothing refused was written");
    assert_eq!(follower.epoch_entries(), vec![(0, 0)], "nor did it reach the epoch cache");
    assert_eq!(read_all(&follower), batches[..2].to_vec());
}

#[test]
fn append_replicated_batches_ignores_a_trailing_partial_batch_and_skips_what_it_has() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, batches) = leader_log(a.path(), &[0, 0, 2, 2, 5, 5]);
    let all: Vec<u8> = batches.concat();
    let mut follower = Log::open(b.path(), config(1024)).unwrap();
    let now = strom_storage::now_ms();
    // A Fetch response cut inside the 4th batch: three appended, the rest ignored.
    let cut = batches[..3].iter().map(Bytes::len).sum::<usize>() + 30;
    assert_eq!(follower.append_replicated_batches(&all[..cut], now).unwrap(), (3, 6));
    // Cut inside the 4th batch's first 17 bytes too (not even its length is there).
    assert_eq!(follower.append_replicated_batches(&all[cut - 20..cut - 15], now).unwrap(), (0, 6));
    // A refetch from the start: the first three are skipped as duplicates.
    assert_eq!(follower.append_replicated_batches(&all, now).unwrap(), (3, 12));
    assert_eq!(follower.append_replicated_batches(&all, now).unwrap(), (0, 12));
    assert_eq!(follower.append_replicated_batches(&[], now).unwrap(), (0, 12));
    assert_eq!(read_all(&follower), batches);
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    // Malformed data (not merely cut short) is an error.
    let mut bad = batches[0].to_vec();
    bad[16] = 1; // magic
    assert!(matches!(follower.append_replicated_batches(&bad, now), Err(Error::InvalidBatch(_))));
}

#[test]
fn a_follower_rebuilds_idempotent_producer_state_from_replicated_batches() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut leader = Log::open(a.path(), config(1 << 20)).unwrap();
    leader.append(&idempotent(0, 3), 4).unwrap();
    leader.append(&idempotent(3, 2), 4).unwrap();
    let mut follower = Log::open(b.path(), config(1 << 20)).unwrap();
    let data: Vec<u8> = read_all(&leader).concat();
    assert_eq!(follower.append_replicated_batches(&data, strom_storage::now_ms()).unwrap(), (2, 5));
    let entry = follower.producer_state().entry(7, strom_storage::now_ms()).unwrap().clone();
    assert_eq!(entry.epoch, 0);
    assert_eq!(entry.batches.len(), 2);
    assert_eq!((entry.batches.back().unwrap().last_seq, entry.batches.back().unwrap().base_offset), (4, 3));
    // Elected leader, the follower deduplicates a retry it only ever replicated.
    let retry = follower.append(&idempotent(3, 2), 5).unwrap();
    assert_eq!((retry.base_offset, retry.last_offset, retry.duplicate), (3, 4, true));
    assert!(matches!(follower.append(&idempotent(9, 1), 5), Err(Error::Sequence(_))));
    assert_eq!(follower.append(&idempotent(5, 1), 5).unwrap().base_offset, 5);
}

const EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// A log with batches of 2 records appended at epochs 0, 0, 2, 2, 5 (offsets 0..10).
fn epoch_log(dir: &Path) -> Log {
    let mut log = Log::open(dir, config(1024)).unwrap();
    for epoch in [0, 0, 2, 2, 5] {
        log.append(&batch(2, 300, 1_000), epoch).unwrap();
    }
    log
}

#[test]
fn the_epoch_cache_records_where_each_newer_epoch_starts() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(1024)).unwrap();
    assert_eq!((log.latest_epoch(), log.end_offset_for_epoch(0)), (None, None), "empty cache");
    drop(log);
    let mut log = epoch_log(dir.path());
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8)]);
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(fs::read_to_string(dir.path().join(EPOCH_CHECKPOINT)).unwrap(), "0\n3\n0 0\n2 4\n5 8\n");
    // A stale leader's append (an older epoch) leaves the cache alone.
    log.append(&batch(2, 20, 1_000), 1).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8)]);
    assert_eq!(log.log_end_offset(), 12);
    for (epoch, want) in [
        (-1, None),
        (0, Some((0, 4))),
        (1, Some((0, 4))),
        (2, Some((2, 8))),
        (3, Some((2, 8))),
        (5, Some((5, 12))),
        (7, Some((5, 12))),
    ] {
        assert_eq!(log.end_offset_for_epoch(epoch), want, "epoch {epoch}");
    }
    // Below the first entry.
    let other = tempfile::tempdir().unwrap();
    let mut log = Log::open(other.path(), config(1024)).unwrap();
    log.append(&batch(1, 20, 1_000), 3).unwrap();
    assert_eq!(log.end_offset_for_epoch(2), None);
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 1)));
}

#[test]
fn the_epoch_cache_survives_reopens_and_is_rebuilt_when_its_checkpoint_is_lost_or_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let want = vec![(0, 0), (2, 4), (5, 8)];
    epoch_log(dir.path()).close().unwrap();
    let log = Log::open(dir.path(), config(1024)).unwrap();
    assert_eq!(log.epoch_entries(), want, "clean reopen");
    std::mem::forget(log);
    let log = Log::open(dir.path(), config(1024)).unwrap();
    assert_eq!(log.epoch_entries(), want, "unclean reopen");
    drop(log);
    let text = fs::read_to_string(dir.path().join(EPOCH_CHECKPOINT)).unwrap();
    for damage in [None, Some("garbage"), Some("0\n3\n0 0\n2 4\n"), Some("0\n2\n2 4\n0 0\n")] {
        match damage {
            None => fs::remove_file(dir.path().join(EPOCH_CHECKPOINT)).unwrap(),
            Some(d) => fs::write(dir.path().join(EPOCH_CHECKPOINT), d).unwrap(),
        }
        let log = Log::open(dir.path(), config(1024)).unwrap();
        assert!(log.segment_count() > 1, "the rebuild reads every segment");
        assert_eq!(log.epoch_entries(), want, "rebuilt after {damage:?}");
        assert_eq!(fs::read_to_string(dir.path().join(EPOCH_CHECKPOINT)).unwrap(), text, "and written");
    }
}

#[test]
fn epochs_beyond_the_log_end_are_dropped_on_open_but_one_at_the_end_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    epoch_log(dir.path()).close().unwrap();
    // A crash after a new epoch's checkpoint but before its batch: the entry starts at
    // the log end. One beyond it: its data was a torn tail, cut by recovery.
    fs::write(dir.path().join(EPOCH_CHECKPOINT), "0\n4\n0 0\n2 4\n5 8\n6 10\n").unwrap();
    let log = Log::open(dir.path(), config(1024)).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8), (6, 10)]);
    drop(log);
    fs::write(dir.path().join(EPOCH_CHECKPOINT), "0\n5\n0 0\n2 4\n5 8\n6 10\n7 11\n").unwrap();
    let log = Log::open(dir.path(), config(1024)).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8), (6, 10)]);
    assert_eq!(fs::read_to_string(dir.path().join(EPOCH_CHECKPOINT)).unwrap(), "0\n4\n0 0\n2 4\n5 8\n6 10\n");
}

#[test]
fn truncate_to_drops_the_epochs_whose_batches_it_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = epoch_log(dir.path());
    assert_eq!(log.truncate_to(8).unwrap(), 8);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4)], "epoch 5 started at the cut");
    assert_eq!(log.end_offset_for_epoch(5), Some((2, 8)));
    // Inside epoch 2's first batch: the whole batch goes, and epoch 2 with it.
    assert_eq!(log.truncate_to(5).unwrap(), 4);
    assert_eq!(log.epoch_entries(), vec![(0, 0)]);
    drop(log);
    let mut log = Log::open(dir.path(), config(1024)).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0)], "durably");
    assert_eq!(log.append(&batch(2, 20, 1_000), 3).unwrap().base_offset, 4);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (3, 4)]);
}

#[test]
fn reset_to_empties_the_epoch_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = epoch_log(dir.path());
    log.reset_to(100).unwrap();
    assert_eq!((log.epoch_entries(), log.latest_epoch()), (vec![], None));
    assert_eq!(log.end_offset_for_epoch(5), None);
    drop(log);
    let mut log = Log::open(dir.path(), config(1024)).unwrap();
    assert!(log.epoch_entries().is_empty(), "durably");
    log.append(&batch(2, 20, 1_000), 7).unwrap();
    assert_eq!(log.epoch_entries(), vec![(7, 100)]);
}

#[test]
fn assign_epoch_ends_the_previous_epoch_at_the_new_leaders_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = epoch_log(dir.path());
    log.assign_epoch(8, 10).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8), (8, 10)]);
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 10)));
    assert_eq!(log.end_offset_for_epoch(8), Some((8, 10)));
    // Older or equal epochs change nothing; a newer one at the same start replaces it.
    log.assign_epoch(8, 10).unwrap();
    log.assign_epoch(6, 10).unwrap();
    log.assign_epoch(9, 10).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8), (9, 10)]);
    assert!(matches!(log.assign_epoch(-1, 10), Err(Error::InvalidLeaderEpoch(-1))));
    assert!(matches!(log.assign_epoch(10, 11), Err(Error::OffsetOutOfRange { offset: 11, .. })));
    // The entry without data survives a reopen (it is at the log end, not beyond it).
    drop(log);
    let mut log = Log::open(dir.path(), config(1024)).unwrap();
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 10)));
    // The new leader's appends carry its epoch: no new entry, the epoch grows.
    log.append(&batch(3, 20, 1_000), 9).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8), (9, 10)]);
    assert_eq!(log.end_offset_for_epoch(9), Some((9, 13)));
}

#[test]
fn truncating_to_the_log_end_drops_an_epoch_that_wrote_nothing() {
    // A broker led briefly (epoch 8 assigned at 10) and wrote nothing; the next leader
    // tells it its data ends at 10. No batch goes, but epoch 8 must: otherwise the
    // follower keeps asking the leader about an epoch the leader never had.
    let dir = tempfile::tempdir().unwrap();
    let mut log = epoch_log(dir.path());
    log.assign_epoch(8, 10).unwrap();
    assert_eq!(log.truncate_to(10).unwrap(), 10);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8)]);
    assert_eq!(log.end_offset_for_epoch(8), Some((5, 10)));
    drop(log);
    let log = Log::open(dir.path(), config(1024)).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8)], "the checkpoint was rewritten");
}

#[derive(Debug, Clone)]
enum EpochOp {
    /// An append at the current epoch, or (`bump`) at a newer one.
    Append {
        bump: bool,
        records: usize,
    },
    /// A new leader: the next epoch assigned at the log end.
    Assign,
    /// Truncation to a point `fraction`/256 of the way through the log.
    Truncate {
        fraction: u8,
    },
    ReopenUnclean,
    /// The checkpoint is lost: the reopen rebuilds the cache from the batches.
    LoseCheckpoint,
}

fn epoch_op() -> impl proptest::strategy::Strategy<Value = EpochOp> {
    use proptest::prelude::*;
    prop_oneof![
        8 => (any::<bool>(), 1usize..4).prop_map(|(bump, records)| EpochOp::Append { bump, records }),
        2 => Just(EpochOp::Assign),
        2 => any::<u8>().prop_map(|fraction| EpochOp::Truncate { fraction }),
        1 => Just(EpochOp::ReopenUnclean),
        1 => Just(EpochOp::LoseCheckpoint),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever happens, the cache is ordered, ends by the log end, starts each cached
    /// epoch at a batch of that epoch, and maps every batch to its own epoch.
    #[test]
    fn the_epoch_cache_always_describes_the_batches_in_the_log(ops in proptest::collection::vec(epoch_op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config(1024)).unwrap();
        let mut epoch = 0;
        for op in ops {
            match op {
                EpochOp::Append { bump, records } => {
                    epoch += i32::from(bump);
                    log.append(&batch(records, 150, 1_000), epoch).unwrap();
                }
                EpochOp::Assign => {
                    epoch += 1;
                    log.assign_epoch(epoch, log.log_end_offset()).unwrap();
                }
                EpochOp::Truncate { fraction } => {
                    let end = log.log_end_offset();
                    log.truncate_to(end * i64::from(fraction) / 256).unwrap();
                }
                EpochOp::ReopenUnclean => {
                    std::mem::forget(log);
                    log = Log::open(dir.path(), config(1024)).unwrap();
                }
                EpochOp::LoseCheckpoint => {
                    drop(log);
                    fs::remove_file(dir.path().join(EPOCH_CHECKPOINT)).unwrap();
                    log = Log::open(dir.path(), config(1024)).unwrap();
                }
            }
            let entries = log.epoch_entries();
            let end = log.log_end_offset();
            proptest::prop_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "{entries:?}");
            proptest::prop_assert!(entries.iter().all(|&(_, start)| start <= end), "{entries:?} end {end}");
            let batches: Vec<BatchHeader> = read_all(&log).iter().map(|b| BatchHeader::parse(b).unwrap()).collect();
            for &(e, start) in entries.iter().filter(|&&(_, start)| start < end) {
                let at = batches.iter().find(|h| h.base_offset == start);
                proptest::prop_assert_eq!(at.map(|h| h.partition_leader_epoch), Some(e), "entry ({}, {})", e, start);
            }
            for h in &batches {
                let (found, until) = log.end_offset_for_epoch(h.partition_leader_epoch).unwrap();
                proptest::prop_assert_eq!(found, h.partition_leader_epoch);
                proptest::prop_assert!(until > h.last_offset(), "epoch {} ends at {} before {}", found, until, h.last_offset());
            }
        }
    }
}

/// A transactional batch of producer 11 at `epoch`, sequences `seq..seq + records`.
fn transactional(epoch: i16, seq: i32, records: usize) -> BytesMut {
    let mut b = BatchBuilder::new(1_000).producer(11, epoch, seq).transactional(true);
    for i in 0..records {
        b.add(None, Some(format!("t{i}").as_bytes()));
    }
    b.build()
}

#[test]
fn open_transactions_bound_the_stable_offset_across_kill_and_snapshots() {
    use strom_protocol::records::TxnMarker;
    let marker = |commit, coordinator_epoch, epoch| TxnMarker { commit, coordinator_epoch }.batch(11, epoch, 2_000);
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    log.append(&batch(2, 10, 1_000), 0).unwrap(); // 0-1
    log.append(&transactional(0, 0, 3), 0).unwrap(); // 2-4
    assert_eq!(log.producer_state().first_unstable_offset(), Some(2));
    log.append(&marker(false, 1, 0), 0).unwrap(); // 5: abort
    assert_eq!(log.producer_state().first_unstable_offset(), None);
    log.append(&transactional(0, 3, 1), 0).unwrap(); // 6: the next transaction
                                                     // kill -9: no snapshot; replay from the log start must find the open transaction
                                                     // and the coordinator epoch of the marker.
    std::mem::forget(log);
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.producer_state().first_unstable_offset(), Some(6));
    assert!(matches!(log.append(&marker(true, 0, 0), 0), Err(Error::Marker(_))), "a deposed coordinator");
    log.close().unwrap(); // a snapshot taken with the transaction open
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.producer_state().first_unstable_offset(), Some(6));
    assert_eq!(log.append(&marker(true, 1, 0), 0).unwrap().base_offset, 7);
    assert_eq!(log.producer_state().first_unstable_offset(), None);
    // The marker kept the producer's sequence: the next batch continues at 4.
    assert_eq!(log.append(&transactional(0, 4, 1), 0).unwrap().base_offset, 8);
}

#[test]
fn open_removes_only_its_own_temporary_files() {
    // The metadata quorum keeps its snapshots in its log's directory and may be writing
    // one (`….checkpoint.tmp`) while the log is reopened by `reset_to`.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(1 << 20)).unwrap();
    log.append(&batch(1, 10, 1_000), 0).unwrap();
    log.close().unwrap();
    let own = [
        format!("{:020}.snapshot.tmp", 1),
        "recovery-point.tmp".to_string(),
        "00000000000000000000.log.cleaned".into(),
    ];
    let foreign = "00000000000000001000-0000000007.checkpoint.tmp";
    for name in own.iter().map(String::as_str).chain([foreign]) {
        fs::write(dir.path().join(name), b"partial").unwrap();
    }
    let log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.log_end_offset(), 1);
    for name in &own {
        assert!(!dir.path().join(name).exists(), "{name} is the log's leftover");
    }
    assert!(dir.path().join(foreign).exists(), "another writer's file is left alone");
}

/// Every (key, value) in the log, in offset order, with the offsets of control batches.
fn keyed_records(log: &Log) -> (Vec<(String, String)>, usize) {
    let (mut out, mut markers) = (Vec::new(), 0);
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let data = log.read(next, 1 << 20).unwrap().data;
        for range in split_batches(&data) {
            let batch = data.slice(range.unwrap());
            let h = BatchHeader::parse(&batch).unwrap();
            next = h.last_offset() + 1;
            if h.is_control() {
                markers += 1;
                continue;
            }
            for r in strom_protocol::records::decode_records(&batch).unwrap() {
                let s = |b: Option<Bytes>| String::from_utf8(b.unwrap_or_default().to_vec()).unwrap();
                out.push((s(r.key), s(r.value)));
            }
        }
    }
    (out, markers)
}

#[test]
fn compaction_removes_aborted_records_and_never_cleans_an_open_transaction() {
    use strom_protocol::records::TxnMarker;
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 1024, ..Default::default() };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    let now = 1_000_000;
    let put = |log: &mut Log, pid: i64, seq: i32, key: &str, value: &str| {
        let mut b = if pid < 0 {
            BatchBuilder::new(now)
        } else {
            BatchBuilder::new(now).producer(pid, 0, seq).transactional(true)
        };
        b.add(Some(key.as_bytes()), Some(value.as_bytes()));
        log.append(&b.build(), 0).unwrap();
    };
    let end = |log: &mut Log, pid: i64, commit: bool| {
        log.append(&TxnMarker { commit, coordinator_epoch: 0 }.batch(pid, 0, now), 0).unwrap();
    };
    put(&mut log, -1, 0, "a", "a1");
    put(&mut log, -1, 0, "b", "b1");
    // Producer 1 overwrites both in a transaction it aborts: a1 and b1 stay the values.
    put(&mut log, 1, 0, "a", "a-aborted");
    put(&mut log, 1, 1, "b", "b-aborted");
    end(&mut log, 1, false);
    // Producer 2 overwrites a in a committed transaction.
    put(&mut log, 2, 0, "a", "a2");
    end(&mut log, 2, true);
    // Producer 3 overwrites b in a transaction still open.
    put(&mut log, 3, 0, "b", "b-open");
    // Enough later writes of other keys to seal every segment above.
    for i in 0..40 {
        put(&mut log, -1, 0, &format!("k{i}"), &"x".repeat(60));
    }
    log.compact(now, 0).unwrap();
    let (records, markers) = keyed_records(&log);
    let values: Vec<&str> = records.iter().filter(|(k, _)| k == "a" || k == "b").map(|(_, v)| v.as_str()).collect();
    // b1 survives: the open transaction's b may still abort. a1 and the aborted records go.
    assert_eq!(values, ["b1", "a2", "b-open"]);
    assert_eq!(markers, 2, "markers are kept");
    // The open transaction still holds the last stable offset, and the abort is still known.
    assert_eq!(log.producer_state().first_unstable_offset(), Some(7));
    assert_eq!(log.aborted_transactions(0, 100).len(), 1);
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.producer_state().first_unstable_offset(), Some(7));
    assert_eq!(keyed_records(&log).0.len(), records.len());
}
