#!/usr/bin/env python3
"""confluent-kafka (classic, or KIP-848 when GROUP_PROTOCOL=consumer): a consumer that
only assign()s partitions commits offsets in its group without joining it (generation
or member epoch -1). In consumer mode librdkafka >= 2.10 sends its own member id
(KIP-1082) with epoch -1; Kafka accepts such commits while the group is empty. The
commit must be stored: committed() returns it and a second consumer resumes there."""

import os

import compat
import ck_helpers as ck
from confluent_kafka import TopicPartition
from compat import Deadline, fail, log, passed

PROTOCOL = os.environ.get("GROUP_PROTOCOL", "classic")
topic = compat.topic()
group = compat.topic("-group")
a = ck.create_topic(topic, 2)
ck.wait_partitions(a, topic, 2)
ck.produce_all(ck.producer(), topic, ({"key": b"k%d" % i, "value": b"v%d" % i, "partition": i % 2} for i in range(40)))

extra = {"group.id": group, "group.protocol": PROTOCOL}
c = ck.consumer(**extra)
c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
seen = {0: 0, 1: 0}
dl = Deadline(60)
while min(seen.values()) < 7 and not dl.expired():
    for m in c.consume(num_messages=100, timeout=0.5):
        if m.error() is None:
            seen[m.partition()] = max(seen[m.partition()], m.offset() + 1)
if min(seen.values()) < 7:
    fail("consumed only up to %s" % seen)
offsets = [TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 5)]
try:
    result = c.commit(offsets=offsets, asynchronous=False)
except Exception as e:  # noqa: BLE001
    fail("standalone commit (%s protocol) refused: %r" % (PROTOCOL, e))
bad = [tp for tp in result if tp.error is not None]
if bad:
    fail("standalone commit (%s protocol): per-partition errors %s" % (PROTOCOL, [(tp.partition, str(tp.error)) for tp in bad]))
committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=30)}
c.close()
if committed != {0: 7, 1: 5}:
    fail("committed() after the commit: %s, expected {0: 7, 1: 5}" % committed)
log("committed %s with the %s protocol" % (committed, PROTOCOL))

# A fresh consumer in the same group resumes from the committed offsets.
c = ck.consumer(**extra)
c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
first = {}
dl = Deadline(60)
while len(first) < 2 and not dl.expired():
    for m in c.consume(num_messages=100, timeout=0.5):
        if m.error() is None:
            first.setdefault(m.partition(), m.offset())
c.close()
if first != {0: 7, 1: 5}:
    fail("the second consumer started at %s, expected {0: 7, 1: 5}" % first)
passed("standalone commit stored and resumed from ({} protocol)".format(PROTOCOL))
