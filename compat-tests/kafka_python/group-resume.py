#!/usr/bin/env python3
"""kafka-python: a group member commits after 60 of 100 records; the broker is
restarted; a new member resumes exactly at offset 60."""

import os
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

import compat
from broker import OwnBroker
from compat import Deadline, fail, log, passed

own = OwnBroker().start()
os.environ["STROM_BOOTSTRAP"] = own.bootstrap
import kp_helpers as kp  # noqa: E402 - reads the bootstrap address set above

topic = compat.topic("-resume")
group = compat.topic("-resume-group")
try:
    a = kp.create_topic(topic, 1)
    kp.wait_partitions(topic, 1, admin_client=a)
    p = kp.producer()
    for i in range(100):
        p.send(topic, key=b"k%d" % i, value=b"v%d" % i)
    p.flush(timeout=60)
    p.close(timeout=10)
    a.close()

    def take(c, n, timeout=60):
        got = []
        dl = Deadline(timeout)
        while len(got) < n and not dl.expired():
            for recs in c.poll(timeout_ms=200, max_records=n - len(got)).values():
                got.extend(recs)
        return got

    def member():
        c = KafkaConsumer(bootstrap_servers=own.bootstrap, group_id=group, auto_offset_reset="earliest",
                          enable_auto_commit=False)
        c.subscribe([topic])
        return c

    t0 = time.monotonic()
    c = member()
    first = take(c, 60)
    join_s = time.monotonic() - t0
    if [r.offset for r in first] != list(range(60)):
        fail("first member read offsets %s" % [r.offset for r in first][:10])
    c.commit({TopicPartition(topic, 0): OffsetAndMetadata(60, "resume-test", -1)})
    c.close(autocommit=False)
    log("restarting the broker")
    own.restart()
    c = member()
    rest = take(c, 40)
    extra = take(c, 1, timeout=2)
    committed = c.committed(TopicPartition(topic, 0), metadata=True)
    c.close(autocommit=False)
    offsets = [r.offset for r in rest]
    if offsets != list(range(60, 100)) or extra:
        fail("after restart got offsets %s%s, expected 60..99" % (offsets[:5], " and more" if extra else ""))
    if committed is None or committed.offset != 60 or committed.metadata != "resume-test":
        fail("committed offset/metadata after restart: %r" % (committed,))
    passed("resumed at offset 60 after restart, commit metadata preserved; first records after %.2fs" % join_s)
finally:
    own.close()
