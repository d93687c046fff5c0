//! The leader-epoch cache of one partition (Kafka's `LeaderEpochFileCache`, KIP-101/279,
//! ADR 0010): which leader epoch wrote which range of offsets, so that a replica can
//! find where its log diverges from a new leader's without trusting its high watermark.
//!
//! The cache is an ordered list of `(epoch, start_offset)` entries, strictly increasing
//! in both: epoch `e` covers the offsets from its start to the next entry's start (the
//! last entry: to the log end). An entry is added when a batch of a newer epoch is
//! appended, and by a new leader at its log end when it takes over.
//!
//! CHECKPOINT FORMAT (version [`CHECKPOINT_FORMAT_VERSION`], Kafka's own), file
//! `leader-epoch-checkpoint`, ASCII text, one item a line:
//! ```text
//! 0            <- format version
//! 2            <- number of entries
//! 0 0          <- "<epoch> <start_offset>", ascending
//! 5 1200
//! ```
//! The file is written whole (temp file, fsync, rename, directory fsync) by `log.rs`;
//! this module only holds the rules and the text encoding, so it does no I/O.

/// Name of the checkpoint file in the partition directory.
pub(crate) const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
/// Version of the checkpoint format described above (Kafka's is 0 too).
pub const CHECKPOINT_FORMAT_VERSION: u32 = 0;

/// The `(epoch, start_offset)` entries, kept strictly increasing in both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LeaderEpochCache {
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// The entries, oldest first.
    pub(crate) fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(epoch, _)| epoch)
    }

    /// Whether [`Self::assign`] with `epoch` would change anything (cheap, so appends
    /// can skip the copy-persist-commit dance in the common case).
    pub(crate) fn is_newer(&self, epoch: i32) -> bool {
        epoch >= 0 && self.latest_epoch().is_none_or(|latest| epoch > latest)
    }

    /// Records that `epoch` starts at `start_offset`. Only a newer epoch is recorded
    /// (an older or equal one is already covered, or belongs to a stale leader); later
    /// entries starting at or after `start_offset` are dropped first, as Kafka does:
    /// with the same start, the older epoch covers no offset at all, and a later start
    /// would break the ordering. Returns whether the cache changed.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if !self.is_newer(epoch) || start_offset < 0 {
            return false;
        }
        while self.entries.last().is_some_and(|&(_, start)| start >= start_offset) {
            self.entries.pop();
        }
        self.entries.push((epoch, start_offset));
        true
    }

    /// Drops the entries starting at or after `end_offset` (their batches were cut off).
    /// Returns whether the cache changed.
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, start)| start < end_offset);
        self.entries.len() != before
    }

    /// Drops the entries starting beyond `end_offset` (only: an entry starting exactly
    /// at the log end is a leader's epoch with nothing written yet). Returns whether the
    /// cache changed.
    pub(crate) fn drop_beyond(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, start)| start <= end_offset);
        self.entries.len() != before
    }

    /// Kafka's `endOffsetFor`: the largest cached epoch `<= epoch` and the offset where
    /// it ends (the next entry's start, or `log_end_offset` for the newest). `None` when
    /// the cache is empty or `epoch` is older than its first entry.
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        // Entries are sorted by epoch, so this counts those at or below `epoch`.
        let at_or_below = self.entries.partition_point(|&(e, _)| e <= epoch);
        let (found, _) = *self.entries.get(at_or_below.checked_sub(1)?)?;
        let end = self.entries.get(at_or_below).map_or(log_end_offset, |&(_, start)| start);
        Some((found, end))
    }

    /// The checkpoint file's text.
    pub(crate) fn encode(&self) -> String {
        let mut out = format!("{CHECKPOINT_FORMAT_VERSION}\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            out.push_str(&format!("{epoch} {start}\n"));
        }
        out
    }

    /// Parses checkpoint text. Anything off (unknown version, a count that does not
    /// match the lines, a negative or non-increasing value, extra text) is refused
    /// with the reason: a damaged cache is rebuilt from the log rather than trusted.
    pub(crate) fn decode(text: &str) -> Result<LeaderEpochCache, &'static str> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let version: u32 = lines.next().and_then(|l| l.parse().ok()).ok_or("missing or bad version")?;
        if version != CHECKPOINT_FORMAT_VERSION {
            return Err("unknown format version");
        }
        let count: usize = lines.next().and_then(|l| l.parse().ok()).ok_or("missing or bad entry count")?;
        // Not preallocated from `count`: it comes from the file and may be huge.
        let mut cache = LeaderEpochCache::default();
        for _ in 0..count {
            let line = lines.next().ok_or("fewer entries than the count")?;
            let mut parts = line.split_whitespace();
            let epoch: i32 = parts.next().and_then(|p| p.parse().ok()).ok_or("bad epoch")?;
            let start: i64 = parts.next().and_then(|p| p.parse().ok()).ok_or("bad start offset")?;
            if parts.next().is_some() {
                return Err("trailing text in an entry");
            }
            if epoch < 0 || start < 0 {
                return Err("negative epoch or start offset");
            }
            if cache.entries.last().is_some_and(|&(e, s)| epoch <= e || start <= s) {
                return Err("entries not strictly increasing");
            }
            cache.entries.push((epoch, start));
        }
        if lines.next().is_some() {
            return Err("more entries than the count");
        }
        Ok(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(e, s) in entries {
            assert!(c.assign(e, s));
        }
        c
    }

    #[test]
    fn only_newer_epochs_are_assigned_and_a_same_start_entry_is_replaced() {
        let mut c = cache(&[(0, 0), (2, 10)]);
        assert!(!c.assign(2, 20), "same epoch");
        assert!(!c.assign(1, 20), "older epoch");
        assert!(!c.assign(-1, 20), "no epoch");
        assert!(c.assign(4, 10), "same start as the latest: it covers nothing any more");
        assert_eq!(c.entries(), &[(0, 0), (4, 10)]);
        assert!(c.assign(6, 5), "an earlier start drops later entries");
        assert_eq!(c.entries(), &[(0, 0), (6, 5)]);
    }

    #[test]
    fn end_offsets_follow_kafkas_floor_rule() {
        let c = cache(&[(1, 0), (3, 10), (4, 25)]);
        assert_eq!(c.end_offset_for(0, 40), None);
        assert_eq!(c.end_offset_for(1, 40), Some((1, 10)));
        assert_eq!(c.end_offset_for(2, 40), Some((1, 10)));
        assert_eq!(c.end_offset_for(3, 40), Some((3, 25)));
        assert_eq!(c.end_offset_for(4, 40), Some((4, 40)));
        assert_eq!(c.end_offset_for(9, 40), Some((4, 40)));
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 40), None);
    }

    #[test]
    fn truncation_keeps_or_drops_an_entry_at_the_end_as_asked() {
        let mut c = cache(&[(1, 0), (3, 10), (4, 25)]);
        assert!(!c.drop_beyond(25));
        assert!(c.drop_beyond(24));
        assert_eq!(c.entries(), &[(1, 0), (3, 10)]);
        assert!(c.truncate_from_end(10));
        assert_eq!(c.entries(), &[(1, 0)]);
        assert!(!c.truncate_from_end(10));
    }

    #[test]
    fn the_checkpoint_text_round_trips_and_bad_text_is_refused() {
        let c = cache(&[(0, 0), (5, 1200)]);
        assert_eq!(c.encode(), "0\n2\n0 0\n5 1200\n");
        assert_eq!(LeaderEpochCache::decode(&c.encode()), Ok(c));
        assert_eq!(LeaderEpochCache::decode("0\n0\n"), Ok(LeaderEpochCache::default()));
        for bad in [
            "",
            "1\n0\n",
            "0\n",
            "0\n2\n0 0\n",
            "0\n1\n0 0\n5 10\n",
            "0\n1\n0\n",
            "0\n1\n0 0 0\n",
            "0\n1\n-1 0\n",
            "0\n2\n3 0\n3 10\n",
            "0\n2\n3 10\n4 10\n",
            "0\n2\n3 10\n4 5\n",
            "0\n18446744073709551615\n",
            "0\nx\n",
            "\u{0}\u{ff}",
        ] {
            assert!(LeaderEpochCache::decode(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_text_never_panics_and_accepted_text_is_ordered(text in ".{0,80}") {
            if let Ok(c) = LeaderEpochCache::decode(&text) {
                proptest::prop_assert!(c.entries().windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
            }
        }
    }
}
