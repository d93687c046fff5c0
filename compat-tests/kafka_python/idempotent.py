#!/usr/bin/env python3
"""kafka-python idempotent producer (enable_idempotence=True, acks=all, the defaults):
5,000 keyed records over a 3-partition topic, all send()s queued before the first
result is awaited; every send succeeds, and each partition holds its records exactly
once, in send order, offsets from 0, end offset = count."""

import compat
import kp_helpers as kp
from compat import log, passed

topic = compat.topic()
data = compat.idempotent_dataset()
a = kp.create_topic(topic, compat.IDEMPOTENT_PARTITIONS)
kp.wait_partitions(topic, compat.IDEMPOTENT_PARTITIONS, admin_client=a)
p = kp.producer(enable_idempotence=True, acks="all")
log("producing %d records to %s" % (len(data), topic))
reports = kp.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
p.close(timeout=10)
got, wm = kp.consume_all(topic, list(range(compat.IDEMPOTENT_PARTITIONS)), len(data), timeout=60)
consumed = {q: [(r.offset, r.key, r.value) for r in recs] for q, recs in got.items()}
counts = compat.check_idempotent(data, consumed, wm, reports=reports)
passed("%d records, per partition %s: exactly once, in send order, end offset = count" % (len(data), counts))
