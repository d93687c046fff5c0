#!/usr/bin/env python3
"""confluent-kafka: a lone group member commits after 60 of 100 records; the broker
is restarted; a new member of the group resumes exactly at offset 60 — nothing
lost, nothing committed delivered again. Reports the time from subscribing to the
first assignment (classic: group.initial.rebalance.delay.ms = 3 s, plus the join)."""

import os
import time

from confluent_kafka import Consumer, TopicPartition

import compat
import ck_helpers as ck
from broker import OwnBroker
from compat import Deadline, fail, log, passed

PROTOCOL = os.environ.get("GROUP_PROTOCOL", "classic")
own = OwnBroker().start()
os.environ["STROM_BOOTSTRAP"] = own.bootstrap
topic = compat.topic("-resume")
group = compat.topic("-resume-group")
try:
    ck.create_topic(topic, 1)
    ck.wait_partitions(ck.admin(), topic, 1)
    ck.produce_all(ck.producer(), topic, [{"key": b"k%d" % i, "value": b"v%d" % i} for i in range(100)])

    def member():
        assigned = []
        c = Consumer({"bootstrap.servers": own.bootstrap, "group.id": group, "group.protocol": PROTOCOL,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        started = time.monotonic()
        c.subscribe([topic], on_assign=lambda cons, parts: assigned.append(time.monotonic() - started))
        return c, assigned

    def take(c, n, timeout=60):
        got = []
        dl = Deadline(timeout)
        while len(got) < n and not dl.expired():
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m)
        return got

    c, assigned = member()
    first = take(c, 60)
    if [m.offset() for m in first] != list(range(60)):
        fail("first member read offsets %s" % [m.offset() for m in first][:10])
    join_s = assigned[0] if assigned else float("nan")
    c.commit(message=first[-1], asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    if committed != 60:
        fail("committed offset is %d, expected 60" % committed)
    c.close()

    log("restarting the broker")
    own.restart()
    c, assigned = member()
    rest = take(c, 40)
    offsets = [m.offset() for m in rest]
    extra = take(c, 1, timeout=2)
    c.close()
    if offsets != list(range(60, 100)) or extra:
        fail("after restart got offsets %s%s, expected 60..99" % (offsets[:5], " and more" if extra else ""))
    if PROTOCOL == "classic" and join_s > 3.0 + 5.0:
        fail("first assignment took %.2fs, far beyond the 3 s initial rebalance delay" % join_s)
    passed("%s: resumed at offset 60 after restart; subscribe→assignment %.2fs (initial delay 3 s)" % (PROTOCOL, join_s))
finally:
    own.close()
