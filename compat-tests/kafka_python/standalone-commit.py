#!/usr/bin/env python3
"""kafka-python: a consumer that only assign()s partitions commits offsets in its group
without joining it (generation -1); committed() returns them and a second consumer in
the same group resumes there."""

import compat
import kp_helpers as kp
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from compat import Deadline, fail, log, passed

topic = compat.topic()
group = compat.topic("-group")
a = kp.create_topic(topic, 2)
kp.wait_partitions(topic, 2, admin_client=a)
p = kp.producer()
kp.produce_all(p, topic, ({"key": b"k%d" % i, "value": b"v%d" % i, "partition": i % 2} for i in range(40)))
p.close(timeout=10)

tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]


def consumer():
    return KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest")


c = consumer()
c.assign(tps)
try:
    c.commit({tps[0]: OffsetAndMetadata(7, "", -1), tps[1]: OffsetAndMetadata(5, "", -1)})
except TypeError:  # older OffsetAndMetadata without leader epoch
    c.commit({tps[0]: OffsetAndMetadata(7, ""), tps[1]: OffsetAndMetadata(5, "")})
except Exception as e:  # noqa: BLE001
    fail("standalone commit refused: %r" % e)
committed = {tp.partition: c.committed(tp) for tp in tps}
c.close(autocommit=False)
if committed != {0: 7, 1: 5}:
    fail("committed() after the commit: %s, expected {0: 7, 1: 5}" % committed)
log("committed %s" % committed)

c = consumer()
c.assign(tps)
first = {}
dl = Deadline(60)
while len(first) < 2 and not dl.expired():
    for tp, recs in c.poll(timeout_ms=500).items():
        if recs:
            first.setdefault(tp.partition, recs[0].offset)
c.close(autocommit=False)
if first != {0: 7, 1: 5}:
    fail("the second consumer started at %s, expected {0: 7, 1: 5}" % first)
passed("standalone commit stored and resumed from")
