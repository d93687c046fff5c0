//! The metadata log on this node (ADR 0008): partition `__cluster_metadata-0` in
//! `strom-storage`'s format, holding one record batch per metadata change. The batch
//! has one record whose value is the change's metadata records, so a change is atomic
//! (a torn tail cuts whole changes) and a Raft index is an offset. Snapshots
//! (`<offset:020>-<term:010>.checkpoint`) hold the image's records as of `offset` (the
//! first offset they do not cover) and bound replay time.
//!
//! Single node today: this node is the only voter, every append is committed once it
//! is fsync'd. The Raft library (ADR 0007) will order the same entries in a cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use strom_protocol::metadata_record::Record;
use strom_protocol::records::{split_batches, BatchBuilder, BatchHeader, RecordIter};
use strom_storage::{Log, LogConfig};

use super::image::Image;

/// The metadata partition's directory name (Kafka's).
pub const DIR: &str = "__cluster_metadata-0";
const SNAPSHOT_SUFFIX: &str = ".checkpoint";
pub(super) const SNAPSHOT_MAGIC: &[u8; 8] = b"STRMMETA";
/// The Raft term this single voter writes at.
const SINGLE_VOTER_TERM: i32 = 1;

/// The metadata log and the image it describes.
pub struct MetadataLog {
    dir: PathBuf,
    log: Log,
    image: Arc<Image>,
    /// Offset the newest snapshot covers up to (exclusive); 0 without a snapshot.
    snapshot_offset: i64,
    /// A snapshot is written once this many changes were appended after the last one.
    snapshot_interval: i64,
}

/// Encodes a change (or a snapshot's content): `strom_protocol`'s change encoding.
pub(super) fn encode_records(records: &[Record]) -> anyhow::Result<Bytes> {
    strom_protocol::metadata_record::encode_change(records)
        .map_err(|e| anyhow::anyhow!("encoding a metadata change: {e}"))
}

/// Decodes a change; untrusted bytes, bounded.
pub(super) fn decode_records(value: Bytes) -> anyhow::Result<Vec<Record>> {
    strom_protocol::metadata_record::decode_change(value).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `(offset, term, records)` of every change in `[from, to)`.
pub(super) fn read_changes(log: &Log, from: i64, to: i64) -> anyhow::Result<Vec<(i64, i32, Vec<Record>)>> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < to {
        let data = log.read(offset, 1 << 20).map(|r| r.data).context("reading the metadata log")?;
        anyhow::ensure!(!data.is_empty(), "the metadata log has no batch at offset {offset}");
        for span in split_batches(&data) {
            let span = span.map_err(|e| anyhow::anyhow!("metadata log at offset {offset}: {e}"))?;
            let batch = data.slice(span);
            let header = BatchHeader::parse(&batch).map_err(|e| anyhow::anyhow!("{e}"))?;
            let payload = strom_protocol::records::records_payload(&batch, 64 << 20)
                .map_err(|e| anyhow::anyhow!("metadata batch at {}: {e}", header.base_offset))?;
            for rec in RecordIter::new(payload, header.records_count).map_err(|e| anyhow::anyhow!("{e}"))? {
                let rec = rec.map_err(|e| anyhow::anyhow!("metadata record at {}: {e}", header.base_offset))?;
                let at = header.base_offset + i64::from(rec.offset_delta);
                if at >= offset && at < to {
                    let records = decode_records(rec.value.unwrap_or_default())
                        .with_context(|| format!("metadata change at offset {at}"))?;
                    out.push((at, header.partition_leader_epoch, records));
                }
            }
            offset = header.base_offset + i64::from(header.last_offset_delta) + 1;
            if offset >= to {
                break;
            }
        }
    }
    Ok(out)
}

/// Applies `records` to a copy of `image`; all or nothing.
pub(super) fn applied(image: &Image, records: &[Record]) -> anyhow::Result<Image> {
    let mut next = image.clone();
    for r in records {
        next.apply(r).with_context(|| format!("applying {r:?}"))?;
    }
    Ok(next)
}

fn snapshot_name(offset: i64, term: i32) -> String {
    format!("{offset:020}-{term:010}{SNAPSHOT_SUFFIX}")
}

/// `(offset, path)` of every snapshot file in `dir`, newest first.
pub(super) fn snapshots(dir: &Path) -> anyhow::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) else { continue };
        let Some(offset) = stem.split('-').next().and_then(|o| o.parse::<i64>().ok()) else { continue };
        out.push((offset, path));
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.0));
    Ok(out)
}

/// Reads and checks a snapshot file: magic, CRC32C over everything before the last four
/// bytes, then the records.
fn read_snapshot(path: &Path) -> anyhow::Result<Vec<Record>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let body_len = data.len().checked_sub(4).filter(|&n| n >= SNAPSHOT_MAGIC.len()).context("snapshot too short")?;
    let (body, crc) = data.split_at(body_len);
    let want = u32::from_be_bytes(crc.try_into().context("snapshot CRC")?);
    if crc32c::crc32c(body) != want {
        bail!("snapshot CRC mismatch");
    }
    let content = body.strip_prefix(SNAPSHOT_MAGIC.as_slice()).context("not a metadata snapshot")?;
    decode_records(Bytes::copy_from_slice(content))
}

/// Writes a file durably: temp file, fsync, rename, directory fsync.
pub(super) fn write_durably(dir: &Path, name: &str, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

impl MetadataLog {
    /// Opens (or creates) the metadata log under `data_dir`: loads the newest snapshot
    /// whose CRC checks (setting corrupt ones aside), then replays the log after it.
    /// Refuses to start rather than come up with less metadata than the log held.
    pub fn open(data_dir: &Path, snapshot_interval: i64) -> anyhow::Result<MetadataLog> {
        let dir = data_dir.join(DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut image = Image::default();
        let mut snapshot_offset = 0;
        for (offset, path) in snapshots(&dir)? {
            match read_snapshot(&path).and_then(|records| applied(&Image::default(), &records)) {
                Ok(img) => {
                    image = img;
                    snapshot_offset = offset;
                    break;
                }
                Err(e) => {
                    let aside = path.with_extension("corrupt");
                    tracing::error!(snapshot = %path.display(), error = %format!("{e:#}"), "metadata snapshot unusable; set aside");
                    std::fs::rename(&path, &aside).with_context(|| format!("setting aside {}", path.display()))?;
                }
            }
        }
        let config = LogConfig { segment_bytes: 64 << 20, ..LogConfig::default() };
        let log = Log::open(&dir, config).with_context(|| format!("opening {}", dir.display()))?;
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        if start > snapshot_offset {
            bail!(
                "the metadata log in {} starts at offset {start} but no usable snapshot covers the offsets before it; \
                 refusing to start with incomplete metadata",
                dir.display()
            );
        }
        let mut this = MetadataLog { dir, log, image: Arc::new(Image::default()), snapshot_offset, snapshot_interval };
        for (at, _, records) in read_changes(&this.log, snapshot_offset.max(start), end)? {
            image = applied(&image, &records).with_context(|| format!("metadata change at offset {at}"))?;
        }
        this.image = Arc::new(image);
        Ok(this)
    }

    /// Whether `data_dir` holds a metadata log written by a single node (records, but no
    /// quorum state beside them), which a multi-node quorum cannot adopt.
    pub fn holds_single_node_log(data_dir: &Path) -> anyhow::Result<bool> {
        let dir = data_dir.join(DIR);
        if !dir.exists() || dir.join("quorum-state").exists() {
            return Ok(false);
        }
        for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(SNAPSHOT_SUFFIX) || (name.ends_with(".log") && entry.metadata()?.len() > 0) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The offset the next change will get (every change below it is committed).
    pub fn end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// The current image.
    pub fn image(&self) -> Arc<Image> {
        self.image.clone()
    }

    /// Nothing was ever written: no snapshot and an empty log.
    pub fn is_empty(&self) -> bool {
        self.snapshot_offset == 0 && self.log.log_end_offset() == 0 && snapshots(&self.dir).is_ok_and(|s| s.is_empty())
    }

    /// Appends one change (its records, atomically), fsyncs it, and applies it. A change
    /// that contradicts the image is refused before anything is written.
    pub fn append(&mut self, records: &[Record]) -> anyhow::Result<Arc<Image>> {
        if records.is_empty() {
            return Ok(self.image());
        }
        let next = applied(&self.image, records)?;
        let value = encode_records(records)?;
        let mut b = BatchBuilder::new(strom_storage::now_ms());
        b.add(None, Some(&value));
        let batch = b.build();
        self.log.append(&batch, SINGLE_VOTER_TERM).context("appending to the metadata log")?;
        self.log.flush().context("fsyncing the metadata log")?;
        self.image = Arc::new(next);
        if self.log.log_end_offset() - self.snapshot_offset >= self.snapshot_interval {
            if let Err(e) = self.snapshot() {
                // The change itself is durable; a missing snapshot only costs replay time.
                tracing::warn!(error = %format!("{e:#}"), "writing a metadata snapshot failed");
            }
        }
        Ok(self.image())
    }

    /// Writes a snapshot of the image at the log end, then lets the log start move up to
    /// it and drops older snapshots.
    pub fn snapshot(&mut self) -> anyhow::Result<()> {
        let offset = self.log.log_end_offset();
        self.write_snapshot(offset, &self.image.to_records())?;
        self.log.delete_records_before(offset).context("moving the metadata log start")?;
        for (old, path) in snapshots(&self.dir)? {
            if old < offset {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// The first snapshot of an empty log, from records that describe existing state
    /// (the upgrade from `strom-meta.json`, ADR 0009).
    pub fn install_base(&mut self, records: &[Record]) -> anyhow::Result<Arc<Image>> {
        if !self.is_empty() {
            bail!("the metadata log in {} is not empty", self.dir.display());
        }
        let image = applied(&Image::default(), records)?;
        self.write_snapshot(0, records)?;
        self.image = Arc::new(image);
        Ok(self.image())
    }

    fn write_snapshot(&mut self, offset: i64, records: &[Record]) -> anyhow::Result<()> {
        let mut data = SNAPSHOT_MAGIC.to_vec();
        data.extend_from_slice(&encode_records(records)?);
        let crc = crc32c::crc32c(&data);
        data.extend_from_slice(&crc.to_be_bytes());
        write_durably(&self.dir, &snapshot_name(offset, SINGLE_VOTER_TERM), &data)?;
        self.snapshot_offset = offset;
        Ok(())
    }

    /// Closes the log cleanly.
    pub fn shutdown(&mut self) {
        if let Err(e) = self.log.shutdown() {
            tracing::error!(error = %e, "clean shutdown of the metadata log failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::metadata_record::RESOURCE_TOPIC;
    use strom_protocol::Uuid;

    fn topic(n: u8) -> Vec<Record> {
        let id = Uuid([n; 16]);
        vec![
            Record::Topic { name: format!("t{n}"), id },
            Record::Partition {
                topic_id: id,
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            },
            Record::Config {
                resource_type: RESOURCE_TOPIC,
                resource_name: format!("t{n}"),
                name: "retention.ms".into(),
                value: Some(n.to_string()),
            },
        ]
    }

    #[test]
    fn changes_survive_a_reopen_with_and_without_snapshots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let want = {
            let mut log = MetadataLog::open(dir.path(), 4).expect("open");
            assert!(log.is_empty());
            for n in 1..=10 {
                log.append(&topic(n)).expect("append");
            }
            assert!(log.append(&topic(3)).is_err(), "a second t3 contradicts the image");
            log.image()
        };
        assert_eq!(want.topics.len(), 10);
        // Snapshots were taken every 4 changes; the log before the newest one is gone.
        let snaps = snapshots(&dir.path().join(DIR)).expect("list");
        assert_eq!(snaps.len(), 1, "older snapshots are dropped: {snaps:?}");
        assert_eq!(snaps[0].0, 8);
        let log = MetadataLog::open(dir.path(), 4).expect("reopen");
        assert_eq!(log.image(), want);
        assert!(!log.is_empty());
    }

    #[test]
    fn a_corrupt_snapshot_is_set_aside_and_never_gives_an_empty_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut log = MetadataLog::open(dir.path(), 2).expect("open");
            for n in 1..=3 {
                log.append(&topic(n)).expect("append");
            }
        }
        let (_, path) = snapshots(&dir.path().join(DIR)).expect("list").remove(0);
        let mut bytes = std::fs::read(&path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, bytes).expect("write");
        let Err(err) = MetadataLog::open(dir.path(), 2) else { panic!("opened with no usable snapshot") };
        assert!(format!("{err:#}").contains("no usable snapshot"), "{err:#}");
        assert!(path.with_extension("corrupt").exists(), "the corrupt snapshot was set aside");
    }

    #[test]
    fn a_torn_change_at_the_tail_is_dropped_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut log = MetadataLog::open(dir.path(), 1000).expect("open");
            log.append(&topic(1)).expect("append");
            log.append(&topic(2)).expect("append");
        }
        // Cut the last batch in half, as a crash mid-write would.
        let seg = dir.path().join(DIR).join("00000000000000000000.log");
        let len = std::fs::metadata(&seg).expect("stat").len();
        let f = std::fs::OpenOptions::new().write(true).open(&seg).expect("open");
        f.set_len(len - 20).expect("truncate");
        let log = MetadataLog::open(dir.path(), 1000).expect("reopen");
        let img = log.image();
        assert!(img.topic("t1").is_some());
        assert!(img.topic("t2").is_none(), "the torn change is gone entirely, not half applied");
    }

    #[test]
    fn bad_change_values_are_errors() {
        assert!(decode_records(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f])).is_err());
        assert!(decode_records(Bytes::from_static(&[1, 5, 0, 10])).is_err());
        let ok = encode_records(&topic(1)).expect("encode");
        assert_eq!(decode_records(ok).expect("decode"), topic(1));
    }
}
