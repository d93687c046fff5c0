#!/usr/bin/env python3
"""confluent-kafka: records with headers (duplicates, empty, binary, unicode
names, a null header value, none at all) and explicit non-monotonic
CreateTime timestamps round-trip exactly."""

import compat
import ck_helpers as ck
from compat import fail, first_diff, log, passed

topic = compat.topic()
recs = compat.headers_dataset(allow_null_header_value=True)
log("producing %d records with headers/timestamps to %s (partition 0)" % (len(recs), topic))
p = ck.producer()
# Explicit partition 0: the topic is auto-created with 1 partition.
ck.produce_all(p, topic, (dict(r, partition=0) for r in recs))
ck.wait_partitions(p, topic, 1)

got, _ = ck.consume_all(topic, [0], len(recs))
msgs = got.get(0, [])


def norm_headers(h):
    return [(k, v) for k, v in (h or [])]


expected = [(r["key"], r["value"], r["ts"], r["headers"]) for r in recs]
consumed = []
for m in msgs:
    ts_type, ts = m.timestamp()
    if ts_type != ck.TIMESTAMP_CREATE_TIME:
        fail("offset %d: timestamp type %d, expected CreateTime (%d)" % (m.offset(), ts_type, ck.TIMESTAMP_CREATE_TIME))
    consumed.append((m.key(), m.value(), ts, norm_headers(m.headers())))
d = first_diff(expected, consumed, "record (key, value, timestamp, headers)")
if d:
    fail(d)
passed("%d records: headers and CreateTime timestamps identical" % len(recs))
