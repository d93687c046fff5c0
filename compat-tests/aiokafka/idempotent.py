#!/usr/bin/env python3
"""aiokafka idempotent producer (enable_idempotence=True, acks=all): 5,000 keyed
records over a 3-partition topic, all send()s queued before the first result is
awaited; every send succeeds, and each partition holds its records exactly once, in
send order, offsets from 0, end offset = count."""

import aio_helpers as ah
import compat
from compat import log, passed


async def main():
    topic = compat.topic()
    data = compat.idempotent_dataset()
    a = await ah.admin()
    await ah.create_topic(a, topic, compat.IDEMPOTENT_PARTITIONS)
    await ah.wait_partitions(a, topic, compat.IDEMPOTENT_PARTITIONS)
    await a.close()
    p = await ah.producer(enable_idempotence=True, acks="all")
    log("producing %d records to %s" % (len(data), topic))
    reports = await ah.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
    await ah.bounded(p.stop(), 30, "producer stop")
    got, wm = await ah.consume_all(topic, list(range(compat.IDEMPOTENT_PARTITIONS)), len(data), timeout=60)
    consumed = {q: [(r.offset, r.key, r.value) for r in recs] for q, recs in got.items()}
    counts = compat.check_idempotent(data, consumed, wm, reports=reports)
    passed("%d records, per partition %s: exactly once, in send order, end offset = count" % (len(data), counts))


ah.run(main())
