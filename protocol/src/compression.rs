//! The four record-batch codecs (gzip, snappy, lz4, zstd): bounded
//! decompression and compression. No I/O beyond in-memory readers.
//!
//! Decompression never trusts the input: every codec is read through a
//! reader capped at `limit + 1` bytes, so a compression bomb costs at most
//! `limit` bytes of output (plus the codec's own bounded state: a 64 KiB–4 MiB
//! LZ4 block buffer, a zstd window of at most 2^[`ZSTD_WINDOW_LOG_MAX`] bytes)
//! before it is refused with [`BatchError::DecompressedTooLarge`].
//!
//! Snappy comes in two framings and producers use both: librdkafka and Sarama
//! write one raw snappy block; the Java client, kafka-python and aiokafka write
//! the xerial (snappy-java) stream — the magic `\x82SNAPPY\0`, two big-endian
//! i32 version fields, then `[i32 BE length][raw block]` chunks. The decoder
//! detects the magic and otherwise reads one raw block. The encoder writes the
//! xerial form, which every client reads.
//!
//! LZ4 is the standard frame format (KIP-57). The encoder matches the Java
//! client's writer: 64 KiB independent blocks, no content checksum.

use std::io::{Read, Write};

use crate::records::{BatchError, Compression};

/// Largest zstd window the decoder accepts (16 MiB). Producers choose windows
/// no larger than their input below level 20; batches are far smaller.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// Input bytes per xerial chunk, as snappy-java writes them.
const XERIAL_CHUNK: usize = 32 * 1024;

/// Decompresses `input` (the records part of a batch compressed with
/// `codec`), refusing output larger than `limit` bytes.
/// `Compression::None` returns the input unchanged (still bounded).
pub fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let out = match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(BatchError::DecompressedTooLarge { limit });
            }
            input.to_vec()
        }
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), limit, codec)?,
        Compression::Snappy => snappy_decompress(input, limit)?,
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), limit, codec)?,
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(input).map_err(|_| corrupt(codec))?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(|_| corrupt(codec))?;
            read_bounded(d, limit, codec)?
        }
    };
    Ok(out)
}

/// Compresses `input` with `codec` (`None` returns a copy).
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, BatchError> {
    let fail = |_| BatchError::CompressionFailed(codec as u8);
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(input).map_err(fail)?;
            e.finish().map_err(fail)
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + input.len() / 2);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in input.chunks(XERIAL_CHUNK) {
                let block = enc.compress_vec(chunk).map_err(|_| BatchError::CompressionFailed(codec as u8))?;
                let len = i32::try_from(block.len()).map_err(|_| BatchError::CompressionFailed(codec as u8))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new().block_size(BlockSize::Max64KB).block_mode(BlockMode::Independent);
            let mut e = FrameEncoder::with_frame_info(info, Vec::new());
            e.write_all(input).map_err(fail)?;
            e.finish().map_err(|_| BatchError::CompressionFailed(codec as u8))
        }
        Compression::Zstd => zstd::bulk::compress(input, 3).map_err(fail),
    }
}

fn corrupt(codec: Compression) -> BatchError {
    BatchError::CorruptCompressed(codec as u8)
}

/// Reads `r` to the end, failing once more than `limit` bytes came out.
fn read_bounded(r: impl Read, limit: usize, codec: Compression) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    r.take(cap).read_to_end(&mut out).map_err(|_| corrupt(codec))?;
    if out.len() > limit {
        return Err(BatchError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let codec = Compression::Snappy;
    if !input.starts_with(&XERIAL_MAGIC) {
        return snappy_block(input, limit, 0);
    }
    let mut rest = input.get(XERIAL_HEADER_LEN..).ok_or(corrupt(codec))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest.get(..4).and_then(|s| s.try_into().ok()).ok_or(corrupt(codec))?;
        let len = usize::try_from(i32::from_be_bytes(len_bytes)).map_err(|_| corrupt(codec))?;
        let block = rest.get(4..4 + len).ok_or(corrupt(codec))?;
        let chunk = snappy_block(block, limit, out.len())?;
        out.extend_from_slice(&chunk);
        rest = rest.get(4 + len..).unwrap_or(&[]);
    }
    Ok(out)
}

/// One raw snappy block; its declared length is checked against what `limit`
/// still allows (`so_far` already produced) before anything is allocated.
fn snappy_block(block: &[u8], limit: usize, so_far: usize) -> Result<Vec<u8>, BatchError> {
    let len = snap::raw::decompress_len(block).map_err(|_| corrupt(Compression::Snappy))?;
    if len > limit.saturating_sub(so_far) {
        return Err(BatchError::DecompressedTooLarge { limit });
    }
    snap::raw::Decoder::new().decompress_vec(block).map_err(|_| corrupt(Compression::Snappy))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    fn sample() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(decompress(codec, &packed, data.len()).unwrap(), data, "{codec:?}");
            assert_eq!(
                decompress(codec, &packed, data.len() - 1),
                Err(BatchError::DecompressedTooLarge { limit: data.len() - 1 }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn raw_snappy_blocks_are_read_as_well_as_xerial_streams() {
        let data = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, 1 << 20).unwrap(), data);
        assert!(compress(Compression::Snappy, &data).unwrap().starts_with(&XERIAL_MAGIC));
    }

    #[test]
    fn a_compression_bomb_is_refused_at_the_limit() {
        let zeros = vec![0u8; 64 << 20];
        for codec in ALL.into_iter().skip(1) {
            let bomb = compress(codec, &zeros).unwrap();
            assert!(bomb.len() < 4 << 20, "{codec:?} bomb is {} bytes", bomb.len());
            assert_eq!(
                decompress(codec, &bomb, 1 << 20),
                Err(BatchError::DecompressedTooLarge { limit: 1 << 20 }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        for codec in ALL.into_iter().skip(1) {
            for junk in [&b""[..], b"\x00", b"garbage garbage garbage", &XERIAL_MAGIC, &[0xff; 64]] {
                let r = decompress(codec, junk, 1 << 20);
                // Empty input is a valid (empty) stream for some codecs; anything else must fail cleanly.
                if let Err(e) = r {
                    assert!(
                        matches!(e, BatchError::CorruptCompressed(_) | BatchError::DecompressedTooLarge { .. }),
                        "{codec:?}: {e:?}"
                    );
                }
            }
        }
    }
}
