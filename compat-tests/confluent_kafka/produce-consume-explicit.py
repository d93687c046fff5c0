#!/usr/bin/env python3
"""confluent-kafka: CreateTopics with 4 partitions, produce 10k keyed
messages (default partitioner spreads keys), consume all 4 partitions from
the beginning; every message exactly once, per-partition produce order,
consumed offsets equal delivery-report offsets, metadata shows 4 partitions."""

import compat
import ck_helpers as ck
from compat import log, passed

NPART = 4
topic = compat.topic()
data = compat.keyed_dataset()

log("creating %s with %d partitions" % (topic, NPART))
a = ck.create_topic(topic, NPART)
ck.wait_partitions(a, topic, NPART)

p = ck.producer()
log("producing %d keyed messages" % len(data))
reports = ck.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))

expected = compat.expected_by_partition(data, reports, NPART)

got, wm = ck.consume_all(topic, list(range(NPART)), len(data))
consumed = {q: [(m.offset(), m.key(), m.value()) for m in msgs] for q, msgs in got.items()}
compat.check_partitions(expected, consumed, wm)
ck.wait_partitions(p, topic, NPART)
passed("%d messages over %d partitions (%s), exactly once, in order" % (
    len(data), NPART, ", ".join(str(len(expected[q])) for q in range(NPART))))
