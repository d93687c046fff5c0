#!/usr/bin/env python3
"""aiokafka: records with headers (duplicates interleaved, empty, binary, unicode
names, a null value, none at all) and explicit non-monotonic CreateTime timestamps
round-trip exactly."""

import aio_helpers as ah
import compat
from compat import fail, first_diff, log, passed


async def main():
    topic = compat.topic()
    recs = compat.headers_dataset(allow_null_header_value=True)
    log("producing %d records with headers/timestamps to %s (partition 0)" % (len(recs), topic))
    p = await ah.producer()
    await ah.produce_all(p, topic, (dict(r, partition=0) for r in recs))
    await ah.bounded(p.stop(), 30, "producer stop")
    a = await ah.admin()
    await ah.wait_partitions(a, topic, 1)
    await a.close()

    got, _ = await ah.consume_all(topic, [0], len(recs))
    expected = [(r["key"], r["value"], r["ts"], r["headers"]) for r in recs]
    consumed = []
    for r in got.get(0, []):
        if r.timestamp_type != 0:
            fail("offset %d: timestamp_type %s, expected 0 (CreateTime)" % (r.offset, r.timestamp_type))
        consumed.append((r.key, r.value, r.timestamp, [(k, v) for k, v in (r.headers or [])]))
    d = first_diff(expected, consumed, "record (key, value, timestamp, headers)")
    if d:
        fail(d)
    passed("%d records: headers (incl. a null value) and CreateTime timestamps identical" % len(recs))


ah.run(main())
