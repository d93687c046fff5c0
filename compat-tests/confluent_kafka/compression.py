#!/usr/bin/env python3
"""confluent-kafka (bundled librdkafka): for none, gzip, snappy, lz4 and zstd, 1,000
keyed compressible records produced with compression.type=<codec> to their own
1-partition topic are read back exactly (key, value, offsets 0..999)."""

if __name__ != "__main__":
    # This script's directory is on sys.path, and lz4.frame probes
    # `import compression._common._streams` (Python 3.14's stdlib package): refuse to
    # be imported as that package, so lz4 falls back to _compression.
    raise ImportError("compression.py is a compat scenario, not the compression package")

import compat
import ck_helpers as ck
from compat import fail, log, passed

data = compat.compression_dataset()
a = ck.admin()
for codec in compat.CODECS:
    topic = compat.topic("-" + codec)
    ck.create_topic(topic, 1)
    ck.wait_partitions(a, topic, 1)
    p = ck.producer(**{"compression.type": codec})
    reports = ck.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
    if [r[1] for r in reports] != list(range(len(data))):
        fail("%s: delivery-report offsets are not 0..%d: %s" % (
            codec, len(data) - 1, compat.first_diff(list(range(len(data))), [r[1] for r in reports], "offset")))
    got, _ = ck.consume_all(topic, [0], len(data), timeout=60)
    d = compat.check_log(data, [(m.offset(), m.key(), m.value()) for m in got.get(0, [])])
    if d:
        fail("%s: %s" % (codec, d))
    log("%s: %d records identical" % (codec, len(data)))
passed("codecs %s: %d records each read back exactly" % (", ".join(compat.CODECS), len(data)))
