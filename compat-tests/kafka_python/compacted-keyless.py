#!/usr/bin/env python3
"""kafka-python: a topic with cleanup.policy=compact refuses records without a key
(Kafka's LogValidator: INVALID_RECORD), nothing of the refused batch is stored, and
keyed records go in at offsets 0..n."""

import compat
import kp_helpers as kp
from kafka.errors import InvalidRecordError
from compat import fail, log, passed

topic = compat.topic()
a = kp.create_topic(topic, 1, topic_configs={"cleanup.policy": "compact"})
kp.wait_partitions(topic, 1, admin_client=a)

p = kp.producer(enable_idempotence=False, retries=0, acks="all")
try:
    md = p.send(topic, value=b"no key", partition=0).get(timeout=30)
    fail("keyless record on a compacted topic was accepted at offset %d" % md.offset)
except InvalidRecordError as e:
    log("keyless record refused: %r" % e)

keyed = [{"key": b"k%d" % i, "value": b"v%d" % i, "partition": 0} for i in range(10)]
reports = kp.produce_all(p, topic, keyed)
p.close(timeout=10)
if reports != [(0, i) for i in range(10)]:
    fail("keyed records: produce results %s, expected offsets 0..9 (the refused record stored nothing)" % reports)
got, wm = kp.consume_all(topic, [0], 10, timeout=60)
seen = [(r.offset, r.key, r.value) for r in got.get(0, [])]
want = [(i, b"k%d" % i, b"v%d" % i) for i in range(10)]
if seen != want:
    fail("read back %s, expected %s" % (seen[:3], want[:3]))
passed("keyless record refused with InvalidRecordError; 10 keyed records at offsets 0..9")
