#!/usr/bin/env python3
"""confluent-kafka idempotent producer (enable.idempotence=true, acks=all, up to 5
requests in flight): 5,000 keyed records over a 3-partition topic, queued as fast as
produce() takes them; every delivery succeeds, and each partition holds its records
exactly once, in send order, offsets from 0, high watermark = count."""

import compat
import ck_helpers as ck
from compat import log, passed

topic = compat.topic()
data = compat.idempotent_dataset()
a = ck.create_topic(topic, compat.IDEMPOTENT_PARTITIONS)
ck.wait_partitions(a, topic, compat.IDEMPOTENT_PARTITIONS)
p = ck.producer(**{"enable.idempotence": True, "acks": "all"})
log("producing %d records to %s" % (len(data), topic))
reports = ck.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
got, wm = ck.consume_all(topic, list(range(compat.IDEMPOTENT_PARTITIONS)), len(data), timeout=60)
consumed = {q: [(m.offset(), m.key(), m.value()) for m in msgs] for q, msgs in got.items()}
counts = compat.check_idempotent(data, consumed, wm, reports=reports)
passed("%d records, per partition %s: exactly once, in send order, high watermark = count" % (len(data), counts))
