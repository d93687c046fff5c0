#!/usr/bin/env python3
"""kafka-python: records with headers (duplicates, empty, binary, unicode
names, none at all) and explicit non-monotonic CreateTime timestamps
round-trip exactly. (No null header values: kafka-python's producer cannot
encode them.)"""

import compat
import kp_helpers as kp
from compat import fail, first_diff, log, passed

topic = compat.topic()
recs = compat.headers_dataset(allow_null_header_value=False)
log("producing %d records with headers/timestamps to %s (partition 0)" % (len(recs), topic))
p = kp.producer()
kp.produce_all(p, topic, (dict(r, partition=0) for r in recs))
p.close(timeout=10)
kp.wait_partitions(topic, 1)

got, _ = kp.consume_all(topic, [0], len(recs))
expected = [(r["key"], r["value"], r["ts"], r["headers"]) for r in recs]
consumed = []
for r in got.get(0, []):
    if r.timestamp_type != 0:
        fail("offset %d: timestamp_type %s, expected 0 (CreateTime)" % (r.offset, r.timestamp_type))
    consumed.append((r.key, r.value, r.timestamp, [(k, v) for k, v in (r.headers or [])]))
d = first_diff(expected, consumed, "record (key, value, timestamp, headers)")
if d:
    fail(d)
passed("%d records: headers and CreateTime timestamps identical" % len(recs))
