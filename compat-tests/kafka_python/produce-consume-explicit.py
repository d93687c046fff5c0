#!/usr/bin/env python3
"""kafka-python: KafkaAdminClient.create_topics with 4 partitions, produce
10k keyed messages (murmur2 partitioner spreads keys), consume all 4
partitions from the beginning; every message exactly once, per-partition
produce order, consumed offsets equal produce-response offsets, metadata
shows 4 partitions."""

import compat
import kp_helpers as kp
from compat import log, passed

NPART = 4
topic = compat.topic()
data = compat.keyed_dataset()

log("creating %s with %d partitions" % (topic, NPART))
a = kp.create_topic(topic, NPART)
kp.wait_partitions(topic, NPART, admin_client=a)

p = kp.producer()
log("producing %d keyed messages" % len(data))
reports = kp.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
p.close(timeout=10)

expected = compat.expected_by_partition(data, reports, NPART)

got, wm = kp.consume_all(topic, list(range(NPART)), len(data))
consumed = {q: [(m.offset, m.key, m.value) for m in msgs] for q, msgs in got.items()}
compat.check_partitions(expected, consumed, wm)
kp.wait_partitions(topic, NPART, admin_client=a)
passed("%d messages over %d partitions (%s), exactly once, in order" % (
    len(data), NPART, ", ".join(str(len(expected[q])) for q in range(NPART))))
