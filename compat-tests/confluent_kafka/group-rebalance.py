#!/usr/bin/env python3
"""confluent-kafka consumer group (classic, or KIP-848 when GROUP_PROTOCOL=consumer):
three members on a 6-partition topic get two partitions each; one leaves and the
other two take its partitions over. Offsets are committed synchronously before
partitions are given up, so every record must be delivered exactly once overall —
in particular never to two live members of the same generation."""

import os
import time

from confluent_kafka import Consumer

import compat
import ck_helpers as ck
from compat import Deadline, fail, log, passed

PROTOCOL = os.environ.get("GROUP_PROTOCOL", "classic")
topic = compat.topic("-grp")
group = compat.topic("-group")
ck.create_topic(topic, 6)
a = ck.admin()
ck.wait_partitions(a, topic, 6)
p = ck.producer()
first = [{"key": b"k%d" % i, "value": b"first-%d" % i, "partition": i % 6} for i in range(600)]
ck.produce_all(p, topic, first)

delivered = {}  # (partition, offset) -> member name
owners = {}  # member name -> set of partitions
# Records whose commit failed because a rebalance began: Kafka delivers those again
# in the next generation (at-least-once), so only they may show up twice.
uncommitted = set()
redelivered = 0


def make(name):
    cfg = {
        "bootstrap.servers": compat.bootstrap(),
        "group.id": group,
        "group.protocol": PROTOCOL,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "client.id": name,
    }
    if PROTOCOL == "classic":
        cfg["session.timeout.ms"] = 10000
        cfg["heartbeat.interval.ms"] = 500
    c = Consumer(cfg)
    owners[name] = set()

    def on_assign(consumer, parts):
        # Eager protocols hand over the whole assignment; incremental ones add to it.
        if PROTOCOL == "classic":
            owners[name] = {tp.partition for tp in parts}
        else:
            owners[name] |= {tp.partition for tp in parts}

    def on_revoke(consumer, parts):
        try:
            consumer.commit(asynchronous=False)
        except Exception as e:  # noqa: BLE001 - nothing consumed yet is fine
            log("%s: commit on revoke: %s" % (name, e))
        owners[name] -= {tp.partition for tp in parts}

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    return c


def pump(consumers, until, timeout, what):
    global redelivered
    dl = Deadline(timeout)
    while not dl.expired():
        for name, c in consumers.items():
            m = c.poll(0.05)
            if m is None or m.error():
                continue
            key = (m.partition(), m.offset())
            if m.partition() not in owners[name]:
                fail("%s got a record of partition %d it does not own (owns %s)" % (name, m.partition(), sorted(owners[name])))
            if key in delivered:
                if key not in uncommitted:
                    fail("committed record %s delivered to %s and again to %s" % (key, delivered[key], name))
                uncommitted.discard(key)
                redelivered += 1
            delivered[key] = name
            try:
                c.commit(message=m, asynchronous=False)
            except Exception as e:  # noqa: BLE001
                if "REBALANCE_IN_PROGRESS" not in str(e) and "ILLEGAL_GENERATION" not in str(e) and "STALE_MEMBER_EPOCH" not in str(e):
                    fail("%s: commit failed: %s" % (name, e))
                uncommitted.add(key)
        if until():
            return
    fail("timed out waiting for %s; owners %s, delivered %d" % (what, {n: sorted(o) for n, o in owners.items()}, len(delivered)))


t0 = time.monotonic()
consumers = {n: make(n) for n in ("m1", "m2", "m3")}
pump(consumers, lambda: len(delivered) == 600 and all(len(owners[n]) == 2 for n in consumers), 90,
     "3 members with 2 partitions each and all 600 records")
log("3 members: %s after %.1fs" % ({n: sorted(o) for n, o in owners.items()}, time.monotonic() - t0))
if set().union(*owners.values()) != set(range(6)):
    fail("assignment does not cover all partitions: %s" % owners)

log("m3 leaves")
consumers.pop("m3").close()
owners.pop("m3")
second = [{"key": b"k%d" % i, "value": b"second-%d" % i, "partition": i % 6} for i in range(600)]
ck.produce_all(p, topic, second)
pump(consumers, lambda: len(delivered) == 1200 and all(len(owners[n]) == 3 for n in consumers), 90,
     "2 members with 3 partitions each and all 1200 records")
final = {n: sorted(o) for n, o in owners.items()}
for c in consumers.values():
    c.close()
if set(final["m1"]) & set(final["m2"]) or set(final["m1"]) | set(final["m2"]) != set(range(6)):
    fail("final assignment overlaps or misses partitions: %s" % final)
passed("%s protocol: 2+2+2 then 3+3 %s; 1200 records, no committed record delivered twice (%d redelivered after a commit lost to a rebalance)" % (PROTOCOL, final, redelivered))
