#!/usr/bin/env python3
"""confluent-kafka: produce 10k binary-ish messages to a new auto-created
topic, consume from the beginning, compare byte for byte (single partition)."""

import compat
import ck_helpers as ck
from compat import fail, first_diff, log, passed

topic = compat.topic()
data = compat.auto_dataset()
log("producing %d messages to new topic %s (auto-create)" % (len(data), topic))
p = ck.producer()
reports = ck.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))

parts = {r[0] for r in reports}
if parts != {0}:
    fail("expected every message on partition 0 of the auto-created topic, delivery reports say %s" % sorted(parts))
offsets = [r[1] for r in reports]
if offsets != list(range(len(data))):
    fail("delivery-report offsets are not 0..%d: %s" % (len(data) - 1, first_diff(list(range(len(data))), offsets, "offset")))

ck.wait_partitions(p, topic, 1)

got, wm = ck.consume_all(topic, [0], len(data))
msgs = got.get(0, [])
consumed = [(m.key(), m.value()) for m in msgs]
d = first_diff(data, consumed)
if d:
    fail(d)
off = [m.offset() for m in msgs]
if off != list(range(len(data))):
    fail("consumed offsets are not 0..%d: %s" % (len(data) - 1, first_diff(list(range(len(data))), off, "offset")))
if wm.get(0) != (0, len(data)):
    fail("watermarks (ListOffsets earliest, latest) of partition 0: expected (0, %d), got %s" % (len(data), wm.get(0)))
passed("%d messages byte-identical, offsets contiguous, watermarks ok" % len(data))
