#!/usr/bin/env python3
"""aiokafka: produce 10k binary-ish messages (idempotent producer) to a new
auto-created topic, consume from the beginning without a group, compare byte for
byte (single partition)."""

import aio_helpers as ah
import compat
from compat import fail, first_diff, log, passed


async def main():
    topic = compat.topic()
    data = compat.auto_dataset()
    log("producing %d messages to new topic %s (auto-create)" % (len(data), topic))
    p = await ah.producer()
    reports = await ah.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
    await ah.bounded(p.stop(), 30, "producer stop")

    parts = {r[0] for r in reports}
    if parts != {0}:
        fail("expected every message on partition 0 of the auto-created topic, got partitions %s" % sorted(parts))
    offsets = [r[1] for r in reports]
    if offsets != list(range(len(data))):
        fail("produce-response offsets are not 0..%d: %s" % (len(data) - 1, first_diff(list(range(len(data))), offsets, "offset")))

    a = await ah.admin()
    await ah.wait_partitions(a, topic, 1)
    await a.close()

    got, wm = await ah.consume_all(topic, [0], len(data))
    recs = got.get(0, [])
    d = first_diff(data, [(r.key, r.value) for r in recs])
    if d:
        fail(d)
    off = [r.offset for r in recs]
    if off != list(range(len(data))):
        fail("consumed offsets are not 0..%d: %s" % (len(data) - 1, first_diff(list(range(len(data))), off, "offset")))
    if wm.get(0) != (0, len(data)):
        fail("ListOffsets (beginning, end) of partition 0: expected (0, %d), got %s" % (len(data), wm.get(0)))
    passed("%d messages byte-identical, offsets contiguous, beginning/end offsets ok" % len(data))


ah.run(main())
