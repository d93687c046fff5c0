#!/usr/bin/env python3
"""kafka-python: produce 10k binary-ish messages (idempotent producer, the
kafka-python default) to a new auto-created topic, consume from the
beginning without a group, compare byte for byte (single partition)."""

import compat
import kp_helpers as kp
from compat import fail, first_diff, log, passed

topic = compat.topic()
data = compat.auto_dataset()
log("producing %d messages to new topic %s (auto-create)" % (len(data), topic))
p = kp.producer()
reports = kp.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
p.close(timeout=10)

parts = {r[0] for r in reports}
if parts != {0}:
    fail("expected every message on partition 0 of the auto-created topic, got partitions %s" % sorted(parts))
offsets = [r[1] for r in reports]
if offsets != list(range(len(data))):
    fail("produce-response offsets are not 0..%d: %s" % (len(data) - 1, first_diff(list(range(len(data))), offsets, "offset")))

kp.wait_partitions(topic, 1)

got, wm = kp.consume_all(topic, [0], len(data))
recs = got.get(0, [])
consumed = [(r.key, r.value) for r in recs]
d = first_diff(data, consumed)
if d:
    fail(d)
off = [r.offset for r in recs]
if off != list(range(len(data))):
    fail("consumed offsets are not 0..%d: %s" % (len(data) - 1, first_diff(list(range(len(data))), off, "offset")))
if wm.get(0) != (0, len(data)):
    fail("ListOffsets (beginning, end) of partition 0: expected (0, %d), got %s" % (len(data), wm.get(0)))
passed("%d messages byte-identical, offsets contiguous, beginning/end offsets ok" % len(data))
