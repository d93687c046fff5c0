#!/usr/bin/env python3
"""kafka-python: 8 records with 1 MiB incompressible values to a topic created with
max.message.bytes=4194304; the producer allows 4 MiB requests (max_request_size);
read back from offset 0 with kafka-python's default fetch sizes
(max_partition_fetch_bytes 1 MiB: each batch is larger, KIP-74) and compared byte for
byte, offsets 0..7."""

import compat
import kp_helpers as kp
from compat import fail, log, passed

topic = compat.topic()
data = compat.large_dataset()
a = kp.create_topic(topic, 1, topic_configs={"max.message.bytes": str(compat.LARGE_MAX_BYTES)})
kp.wait_partitions(topic, 1, admin_client=a)
log("producing %d x %d-byte values to %s" % (len(data), compat.LARGE_VALUE_BYTES, topic))
p = kp.producer(max_request_size=compat.LARGE_MAX_BYTES)
reports = kp.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
p.close(timeout=10)
if reports != [(0, i) for i in range(len(data))]:
    fail("produce results (partition, offset) %s, expected partition 0 offsets 0..%d" % (reports, len(data) - 1))

got, wm = kp.consume_all(topic, [0], len(data), timeout=60)
compat.check_large(data, [(r.offset, r.key, r.value) for r in got.get(0, [])])
if wm.get(0) != (0, len(data)):
    fail("ListOffsets (beginning, end) of partition 0: expected (0, %d), got %s" % (len(data), wm.get(0)))
passed("%d x 1 MiB values byte-identical at offsets 0..%d (default fetch sizes)" % (len(data), len(data) - 1))
