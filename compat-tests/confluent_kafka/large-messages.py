#!/usr/bin/env python3
"""confluent-kafka: 8 records with 1 MiB incompressible values to a topic created with
max.message.bytes=4194304; the producer allows 4 MiB requests (message.max.bytes);
read back from offset 0 with librdkafka's default fetch sizes (max.partition.fetch.bytes
1 MiB: each batch is larger, KIP-74) and compared byte for byte, offsets 0..7."""

import compat
import ck_helpers as ck
from compat import fail, log, passed

topic = compat.topic()
data = compat.large_dataset()
a = ck.create_topic(topic, 1, config={"max.message.bytes": str(compat.LARGE_MAX_BYTES)})
ck.wait_partitions(a, topic, 1)
log("producing %d x %d-byte values to %s" % (len(data), compat.LARGE_VALUE_BYTES, topic))
p = ck.producer(**{"message.max.bytes": compat.LARGE_MAX_BYTES})
reports = ck.produce_all(p, topic, ({"key": k, "value": v} for k, v in data))
if reports != [(0, i) for i in range(len(data))]:
    fail("delivery reports (partition, offset) %s, expected partition 0 offsets 0..%d" % (reports, len(data) - 1))

got, wm = ck.consume_all(topic, [0], len(data), timeout=60)
compat.check_large(data, [(m.offset(), m.key(), m.value()) for m in got.get(0, [])])
if wm.get(0) != (0, len(data)):
    fail("watermarks of partition 0: expected (0, %d), got %s" % (len(data), wm.get(0)))
passed("%d x 1 MiB values byte-identical at offsets 0..%d (default fetch sizes)" % (len(data), len(data) - 1))
