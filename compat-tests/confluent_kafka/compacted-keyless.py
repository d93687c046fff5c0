#!/usr/bin/env python3
"""confluent-kafka: a topic with cleanup.policy=compact refuses records without a key
(Kafka's LogValidator: INVALID_RECORD, "Compacted topic cannot accept message without
key"), nothing of the refused batch is stored, and keyed records go in at offsets 0..n."""

import compat
import ck_helpers as ck
from confluent_kafka import KafkaError
from compat import fail, log, passed

topic = compat.topic()
a = ck.create_topic(topic, 1, config={"cleanup.policy": "compact"})
ck.wait_partitions(a, topic, 1)

# Idempotence off and one attempt: the refusal must reach the delivery report as is.
p = ck.producer(**{"enable.idempotence": False, "retries": 0, "linger.ms": 0})
errors = []
p.produce(topic, value=b"no key", partition=0, on_delivery=lambda err, msg: errors.append(err))
p.flush(30)
if len(errors) != 1 or errors[0] is None:
    fail("keyless record on a compacted topic: expected a delivery error, got %s" % errors)
if errors[0].code() != KafkaError.INVALID_RECORD:
    fail("keyless record: expected INVALID_RECORD, got %s" % errors[0])
log("keyless record refused: %s" % errors[0])

keyed = [{"key": b"k%d" % i, "value": b"v%d" % i, "partition": 0} for i in range(10)]
reports = ck.produce_all(p, topic, keyed)
if reports != [(0, i) for i in range(10)]:
    fail("keyed records: delivery reports %s, expected offsets 0..9 (the refused record stored nothing)" % reports)
got, wm = ck.consume_all(topic, [0], 10, timeout=60)
seen = [(m.offset(), m.key(), m.value()) for m in got.get(0, [])]
want = [(i, b"k%d" % i, b"v%d" % i) for i in range(10)]
if seen != want:
    fail("read back %s, expected %s" % (seen[:3], want[:3]))
passed("keyless record refused with INVALID_RECORD; 10 keyed records at offsets 0..9")
