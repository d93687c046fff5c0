#!/usr/bin/env python3
"""confluent-kafka: 100 records with CreateTime T0 + 1000·i (T0 = now − 1 h);
Consumer.offsets_for_times gives 42 for T0 + 42 s − 500 ms and for T0 + 42 s, -1
(OFFSET_END: none) after the last record; a consumer assigned at that offset reads
42..99 in order with exact timestamps."""

from confluent_kafka import TopicPartition

import compat
import ck_helpers as ck
from compat import fail, log, passed

topic = compat.topic()
t0 = compat.seek_t0()
data = compat.timestamp_dataset(t0)
a = ck.create_topic(topic, 1)
ck.wait_partitions(a, topic, 1)
ck.produce_all(ck.producer(), topic, ({"key": k, "value": v, "ts": ts} for k, v, ts in data))

c = ck.consumer()
found = {}
for name, ts, want in compat.seek_queries(t0):
    res = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
    if len(res) != 1 or res[0].error is not None:
        fail("offsets_for_times(%s = %d): %r" % (name, ts, res))
    got = res[0].offset
    if got != (-1 if want is None else want):
        fail("offsets_for_times(%s = %d): offset %d, expected %s" % (name, ts, got, "-1 (none)" if want is None else want))
    found[name] = got
    log("offsets_for_times(%s) = %d" % (name, got))
c.close()

start = found["T0+%ds" % compat.SEEK_INDEX]
got, _ = ck.consume_all(topic, [0], compat.SEEK_COUNT - start, timeout=60, start=start)
recs = []
for m in got.get(0, []):
    ts_type, ts = m.timestamp()
    if ts_type != ck.TIMESTAMP_CREATE_TIME:
        fail("offset %d: timestamp type %d, expected CreateTime" % (m.offset(), ts_type))
    recs.append((m.offset(), m.key(), m.value(), ts))
d = compat.check_seek(t0, recs)
if d:
    fail(d)
passed("offsets_for_times %s; read %d..%d from there with exact timestamps" % (
    ", ".join("%s→%d" % kv for kv in found.items()), start, compat.SEEK_COUNT - 1))
