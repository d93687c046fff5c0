//! Scanning a segment's log bytes to find its valid prefix.
//!
//! Recovery policy: when a log is opened, the LAST segment (the one that was
//! active) is always scanned from byte 0, because after an unclean stop its
//! tail may hold preallocated zeros, a torn batch or garbage. A batch is
//! valid when its header parses (`batchLength >= 49`, magic 2), it lies
//! entirely inside the file, its CRC-32C matches, its offsets are not below
//! the segment base or the previous batch, and its last offset fits the
//! 32-bit relative offset of the index. The file is truncated at the first
//! invalid batch — a torn tail is never served — and both indexes are
//! rebuilt from the scan. Earlier segments were sealed (trimmed + fsync'd)
//! when the log rolled past them; they are only scanned if an index file is
//! missing or inconsistent, and then they are NOT truncated (that would
//! leave a hole in the offsets): the valid prefix is indexed and reads past
//! it fail with `Error::Corrupt`.

use strom_protocol::records::{verify_crc, BatchError, BatchHeader};

/// Why a scan stopped before the end of the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanStop {
    /// Header, length or CRC check failed (includes a partial last batch).
    Batch(BatchError),
    /// The batch's offsets go backwards, below the segment base, or beyond
    /// what a 32-bit relative offset can address.
    BadOffsets,
}

/// Result of [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// Bytes of valid batches from the start.
    pub(crate) valid_len: u64,
    /// Where and why the scan stopped early, if it did.
    pub(crate) stop: Option<(u64, ScanStop)>,
}

/// Walks the batches of `data` (a segment whose base offset is
/// `base_offset`), calling `visit(position, header)` for each valid batch in
/// order, and stops at the first invalid one. Batches wholly below
/// `verified_below` (known durable: the recovery point, or the log end at a clean
/// shutdown) have their headers checked but not their CRC, which is where a scan spends
/// its time.
pub(crate) fn scan(
    data: &[u8],
    base_offset: i64,
    verified_below: i64,
    mut visit: impl FnMut(u64, &BatchHeader),
) -> ScanOutcome {
    let max_last = base_offset.saturating_add(i64::from(u32::MAX));
    let mut pos = 0usize;
    let mut min_base = base_offset;
    let stop = loop {
        let rest = match data.get(pos..) {
            Some(r) if !r.is_empty() => r,
            _ => break None,
        };
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => break Some(ScanStop::Batch(e)),
        };
        if header.last_offset() >= verified_below {
            if let Err(e) = verify_crc(rest) {
                break Some(ScanStop::Batch(e));
            }
        } else if header.total_len() > rest.len() {
            break Some(ScanStop::Batch(BatchError::Truncated { need: header.total_len(), have: rest.len() }));
        }
        let last = header.last_offset();
        if header.base_offset < min_base || header.last_offset_delta < 0 || last > max_last || last == i64::MAX {
            break Some(ScanStop::BadOffsets);
        }
        visit(pos as u64, &header);
        pos += header.total_len();
        min_base = last + 1;
    };
    ScanOutcome { valid_len: pos as u64, stop: stop.map(|s| (pos as u64, s)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::records::{set_base_offset, BatchBuilder};

    fn batch(base: i64, n: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new(1000);
        for i in 0..n {
            b.add(None, Some(format!("v{i}").as_bytes()));
        }
        let mut out = b.build().to_vec();
        set_base_offset(&mut out, base).unwrap();
        out
    }

    #[test]
    fn scan_stops_at_zeros_torn_batches_and_backward_offsets() {
        let a = batch(100, 2);
        let b = batch(102, 3);
        let mut data = [a.clone(), b.clone()].concat();
        let mut seen = Vec::new();
        let out = scan(&data, 100, 0, |pos, h| seen.push((pos, h.base_offset)));
        assert_eq!(out.valid_len, data.len() as u64);
        assert_eq!(out.stop, None);
        assert_eq!(seen, vec![(0, 100), (a.len() as u64, 102)]);

        data.extend_from_slice(&[0u8; 100]);
        let out = scan(&data, 100, 0, |_, _| {});
        assert_eq!(out.valid_len, (a.len() + b.len()) as u64);
        assert!(matches!(out.stop, Some((_, ScanStop::Batch(BatchError::BadLength(0))))));

        let torn = [a.clone(), b[..b.len() - 1].to_vec()].concat();
        assert_eq!(scan(&torn, 100, 0, |_, _| {}).valid_len, a.len() as u64);

        let backwards = [a.clone(), batch(101, 1)].concat();
        let out = scan(&backwards, 100, 0, |_, _| {});
        assert_eq!(out.valid_len, a.len() as u64);
        assert_eq!(out.stop, Some((a.len() as u64, ScanStop::BadOffsets)));

        assert_eq!(scan(&a, 101, 0, |_, _| {}).valid_len, 0);
    }

    #[test]
    fn batches_below_the_verified_point_skip_the_crc_but_not_the_length_checks() {
        let a = batch(100, 2);
        let mut b = batch(102, 3);
        let last = b.len() - 1;
        b[last] ^= 0xff; // corrupt b's records: its CRC no longer matches
        let data = [a.clone(), b.clone()].concat();
        assert_eq!(scan(&data, 100, 0, |_, _| {}).valid_len, a.len() as u64, "verified: b is cut");
        assert_eq!(scan(&data, 100, 105, |_, _| {}).valid_len, data.len() as u64, "trusted below 105");
        let torn = [a.clone(), b[..10].to_vec()].concat();
        assert_eq!(scan(&torn, 100, 105, |_, _| {}).valid_len, a.len() as u64, "a torn tail is still cut");
    }
}
