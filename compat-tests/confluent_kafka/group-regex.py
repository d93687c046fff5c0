#!/usr/bin/env python3
"""confluent-kafka regex subscription ("^prefix-(a|b|c)$"): classic protocol (the
client matches), or KIP-848 (SubscribedTopicRegex, matched by the broker). The
member gets the partitions of the matching topics only, and picks up a matching
topic created later."""

import os

from confluent_kafka import Consumer

import compat
import ck_helpers as ck
from compat import Deadline, fail, passed

PROTOCOL = os.environ.get("GROUP_PROTOCOL", "classic")
prefix = compat.topic("-rx")
a = ck.admin()
for suffix in ("a", "b", "other"):
    ck.create_topic("%s-%s" % (prefix, suffix), 2)
    ck.wait_partitions(a, "%s-%s" % (prefix, suffix), 2)
owned = set()


def on_assign(c, parts):
    owned.update((tp.topic, tp.partition) for tp in parts)


def on_revoke(c, parts):
    owned.difference_update((tp.topic, tp.partition) for tp in parts)


cfg = {"bootstrap.servers": compat.bootstrap(), "group.id": prefix + "-group", "group.protocol": PROTOCOL,
       "enable.auto.commit": False, "topic.metadata.refresh.interval.ms": 1000}
c = Consumer(cfg)
c.subscribe(["^%s-(a|b|c)$" % prefix.replace(".", "\\.")], on_assign=on_assign, on_revoke=on_revoke)


def wait_for(want, timeout=60):
    dl = Deadline(timeout)
    while not dl.expired():
        c.poll(0.1)
        if owned == want:
            return
    fail("expected %s, own %s" % (sorted(want), sorted(owned)))


ab = {("%s-%s" % (prefix, t), p) for t in ("a", "b") for p in (0, 1)}
wait_for(ab)
ck.create_topic(prefix + "-c", 2)
wait_for(ab | {(prefix + "-c", p) for p in (0, 1)})
c.close()
passed("%s: regex matched a and b (not other), then picked up c created later" % PROTOCOL)
