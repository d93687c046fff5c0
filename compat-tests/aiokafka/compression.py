#!/usr/bin/env python3
"""aiokafka: for none, gzip, snappy, lz4 and zstd (codecs from cramjam), 1,000 keyed
compressible records produced with compression_type=<codec> to their own 1-partition
topic are read back exactly (key, value, offsets 0..999)."""

if __name__ != "__main__":
    # This script's directory is on sys.path, and lz4.frame probes
    # `import compression._common._streams` (Python 3.14's stdlib package): refuse to
    # be imported as that package, so lz4 falls back to _compression.
    raise ImportError("compression.py is a compat scenario, not the compression package")

import aio_helpers as ah
import compat
from compat import fail, log, passed


async def main():
    data = compat.compression_dataset()
    a = await ah.admin()
    for codec in compat.CODECS:
        topic = compat.topic("-" + codec)
        await ah.create_topic(a, topic, 1)
        await ah.wait_partitions(a, topic, 1)
        p = await ah.producer(compression_type=None if codec == "none" else codec)
        reports = await ah.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
        await ah.bounded(p.stop(), 30, "producer stop")
        if [r[1] for r in reports] != list(range(len(data))):
            fail("%s: produce-result offsets are not 0..%d: %s" % (
                codec, len(data) - 1, compat.first_diff(list(range(len(data))), [r[1] for r in reports], "offset")))
        got, _ = await ah.consume_all(topic, [0], len(data), timeout=60)
        d = compat.check_log(data, [(r.offset, r.key, r.value) for r in got.get(0, [])])
        if d:
            fail("%s: %s" % (codec, d))
        log("%s: %d records identical" % (codec, len(data)))
    await a.close()
    passed("codecs %s: %d records each read back exactly" % (", ".join(compat.CODECS), len(data)))


ah.run(main())
