#!/usr/bin/env python3
"""aiokafka: AIOKafkaAdminClient.create_topics with 4 partitions, produce 10k keyed
messages (aiokafka's default partitioner: murmur2 like Java), consume all 4
partitions from the beginning; every message exactly once, per-partition produce
order, consumed offsets equal produce-response offsets, metadata shows 4
partitions."""

import aio_helpers as ah
import compat
from compat import log, passed

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

    expected = compat.expected_by_partition(data, reports, NPART)

    got, wm = await ah.consume_all(topic, list(range(NPART)), len(data))
    consumed = {q: [(m.offset, m.key, m.value) for m in msgs] for q, msgs in got.items()}
    compat.check_partitions(expected, consumed, wm)
    await ah.wait_partitions(a, topic, NPART)
    await a.close()
    passed("%d messages over %d partitions (%s), exactly once, in order" % (
        len(data), NPART, ", ".join(str(len(expected[q])) for q in range(NPART))))


ah.run(main())
