#!/usr/bin/env python3
"""kafka-python: 100 records with CreateTime T0 + 1000·i (T0 = now − 1 h);
KafkaConsumer.offsets_for_times gives 42 for T0 + 42 s − 500 ms and for T0 + 42 s, None
after the last record; after seek() there the consumer reads 42..99 in order with
exact timestamps."""

from kafka import TopicPartition

import compat
import kp_helpers as kp
from compat import Deadline, fail, passed

topic = compat.topic()
t0 = compat.seek_t0()
data = compat.timestamp_dataset(t0)
a = kp.create_topic(topic, 1)
kp.wait_partitions(topic, 1, admin_client=a)
p = kp.producer()
kp.produce_all(p, topic, ({"key": k, "value": v, "ts": ts} for k, v, ts in data))
p.close(timeout=10)

c = kp.consumer()
tp = TopicPartition(topic, 0)
c.assign([tp])
found = {}
for name, ts, want in compat.seek_queries(t0):
    res = c.offsets_for_times({tp: ts}, timeout_ms=10000)
    found[name] = compat.check_offset_for_time(name, ts, t0, want, res.get(tp))

start = found["T0+%ds" % compat.SEEK_INDEX]
c.seek(tp, start)
recs, dl = [], Deadline(60)
want_n = compat.SEEK_COUNT - start
while len(recs) < want_n and not dl.expired():
    for r in c.poll(timeout_ms=500).get(tp, []):
        if r.timestamp_type != 0:
            fail("offset %d: timestamp_type %s, expected 0 (CreateTime)" % (r.offset, r.timestamp_type))
        recs.append((r.offset, r.key, r.value, r.timestamp))
recs.extend((r.offset, r.key, r.value, r.timestamp) for r in c.poll(timeout_ms=300).get(tp, []))
c.close(autocommit=False)
d = compat.check_seek(t0, recs)
if d:
    fail(d)
passed("offsets_for_times %s; read %d..%d after seek() with exact timestamps" % (
    ", ".join("%s→%s" % kv for kv in found.items()), start, compat.SEEK_COUNT - 1))
