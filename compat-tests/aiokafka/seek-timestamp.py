#!/usr/bin/env python3
"""aiokafka: 100 records with CreateTime T0 + 1000·i (T0 = now − 1 h);
AIOKafkaConsumer.offsets_for_times gives 42 for T0 + 42 s − 500 ms and for T0 + 42 s,
None after the last record; after seek() there the consumer reads 42..99 in order with
exact timestamps."""

from aiokafka import AIOKafkaConsumer, TopicPartition

import aio_helpers as ah
import compat
from compat import Deadline, fail, passed


async def main():
    topic = compat.topic()
    t0 = compat.seek_t0()
    data = compat.timestamp_dataset(t0)
    a = await ah.admin()
    await ah.create_topic(a, topic, 1)
    await ah.wait_partitions(a, topic, 1)
    await a.close()
    p = await ah.producer()
    await ah.produce_all(p, topic, ({"key": k, "value": v, "ts": ts} for k, v, ts in data))
    await ah.bounded(p.stop(), 30, "producer stop")

    c = AIOKafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest")
    await ah.bounded(c.start(), 30, "consumer start")
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    found = {}
    for name, ts, want in compat.seek_queries(t0):
        res = await ah.bounded(c.offsets_for_times({tp: ts}), 30, "offsets_for_times")
        found[name] = compat.check_offset_for_time(name, ts, t0, want, res.get(tp))

    start = found["T0+%ds" % compat.SEEK_INDEX]
    c.seek(tp, start)
    recs, dl = [], Deadline(60)
    want_n = compat.SEEK_COUNT - start
    while len(recs) < want_n and not dl.expired():
        for r in (await c.getmany(tp, timeout_ms=500)).get(tp, []):
            if r.timestamp_type != 0:
                fail("offset %d: timestamp_type %s, expected 0 (CreateTime)" % (r.offset, r.timestamp_type))
            recs.append((r.offset, r.key, r.value, r.timestamp))
    recs.extend((r.offset, r.key, r.value, r.timestamp) for r in (await c.getmany(tp, timeout_ms=300)).get(tp, []))
    await ah.bounded(c.stop(), 30, "consumer stop")
    d = compat.check_seek(t0, recs)
    if d:
        fail(d)
    passed("offsets_for_times %s; read %d..%d after seek() with exact timestamps" % (
        ", ".join("%s→%s" % kv for kv in found.items()), start, compat.SEEK_COUNT - 1))


ah.run(main())
