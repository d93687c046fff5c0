#!/usr/bin/env python3
"""aiokafka: 8 records with 1 MiB incompressible values to a topic created with
max.message.bytes=4194304; the producer allows 4 MiB requests (max_request_size);
read back from offset 0 with aiokafka's default fetch sizes
(max_partition_fetch_bytes 1 MiB: each batch is larger, KIP-74) and compared byte for
byte, offsets 0..7."""

from aiokafka.admin import NewTopic

import aio_helpers as ah
import compat
from compat import fail, log, passed


async def main():
    topic = compat.topic()
    data = compat.large_dataset()
    a = await ah.admin()
    await ah.create_topic_with(a, NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": str(compat.LARGE_MAX_BYTES)}))
    await ah.wait_partitions(a, topic, 1)
    await a.close()
    log("producing %d x %d-byte values to %s" % (len(data), compat.LARGE_VALUE_BYTES, topic))
    p = await ah.producer(max_request_size=compat.LARGE_MAX_BYTES)
    reports = await ah.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
    await ah.bounded(p.stop(), 30, "producer stop")
    if reports != [(0, i) for i in range(len(data))]:
        fail("produce results (partition, offset) %s, expected partition 0 offsets 0..%d" % (reports, len(data) - 1))

    got, wm = await ah.consume_all(topic, [0], len(data), timeout=60)
    compat.check_large(data, [(r.offset, r.key, r.value) for r in got.get(0, [])])
    if wm.get(0) != (0, len(data)):
        fail("ListOffsets (beginning, end) of partition 0: expected (0, %d), got %s" % (len(data), wm.get(0)))
    passed("%d x 1 MiB values byte-identical at offsets 0..%d (default fetch sizes)" % (len(data), len(data) - 1))


ah.run(main())
