#!/usr/bin/env python3
"""aiokafka: AIOKafkaAdminClient.create_topics with 4 partitions, produce 10k keyed
messages (aiokafka's default partitioner: murmur2 like Java), consume all 4
partitions from the beginning; every message exactly once, per-partition produce
order, consumed offsets equal produce-response offsets, metadata shows 4
partitions."""

import aio_helpers as ah
import compat
from compat import fail, first_diff, log, passed

NPART = 4


async def main():
    topic = compat.topic()
    data = compat.keyed_dataset()
    a = await ah.admin()
    log("creating %s with %d partitions" % (topic, NPART))
    await ah.create_topic(a, topic, NPART)
    await ah.wait_partitions(a, topic, NPART)

    p = await ah.producer()
    log("producing %d keyed messages" % len(data))
    reports = await ah.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
    await ah.bounded(p.stop(), 30, "producer stop")

    expected = {q: [] for q in range(NPART)}
    key_part = {}
    for (k, v), (part, off) in zip(data, reports):
        if part not in expected:
            fail("message delivered to partition %d, topic has %d" % (part, NPART))
        if key_part.setdefault(k, part) != part:
            fail("key %r delivered to partitions %d and %d" % (k, key_part[k], part))
        expected[part].append((off, k, v))
    empty = [q for q in expected if not expected[q]]
    if empty:
        fail("keys did not spread: partitions %s got no messages" % empty)

    got, wm = await ah.consume_all(topic, list(range(NPART)), len(data))
    for q in range(NPART):
        cons = [(r.offset, r.key, r.value) for r in got.get(q, [])]
        d = first_diff(expected[q], cons, "message (offset, key, value) of partition %d" % q)
        if d:
            fail(d)
        exp_offsets = list(range(len(expected[q])))
        if [e[0] for e in expected[q]] != exp_offsets:
            fail("partition %d offsets not contiguous from 0: %s" % (q, first_diff(exp_offsets, [e[0] for e in expected[q]], "offset")))
        if wm.get(q) != (0, len(expected[q])):
            fail("partition %d (beginning, end) offsets: expected (0, %d), got %s" % (q, len(expected[q]), wm.get(q)))
    extra = set(got) - set(range(NPART))
    if extra:
        fail("records from unexpected partitions %s" % sorted(extra))
    await ah.wait_partitions(a, topic, NPART)
    await a.close()
    passed("%d messages over %d partitions (%s), exactly once, in order" % (
        len(data), NPART, ", ".join(str(len(expected[q])) for q in range(NPART))))


ah.run(main())
