#!/usr/bin/env python3
"""confluent-kafka (librdkafka), classic protocol, cooperative-sticky (incremental
rebalancing) under churn, issue 20 item 6.

1. 8 members join one after another while changing their subscriptions (each starts on
   topic a, half of them switch to a+b at once, then all do), so rebalances overlap and
   members rejoin mid-rebalance. The group must converge to 2 of the 16 partitions per
   member, disjoint and covering both topics, and no partition may ever be owned by two
   members at once.
2. A member id is handed out with MEMBER_ID_REQUIRED and never used (a raw JoinGroup
   without a member id, standing for a librdkafka that discards that answer: "JoinGroup
   response: discarding outdated request"), then a 9th member joins. Kafka holds the join
   phase for the unused id until its 6 s session timeout, then rebalances without it: the
   9 members must share the 16 partitions (1 or 2 each) within 45 s. Strom before d0b18d7
   held the group in PreparingRebalance until the rebalance timeout (max.poll.interval.ms,
   300 s): the stall of issue 20 item 6."""

import time

from confluent_kafka import Consumer

import compat
import ck_helpers as ck
from compat import Deadline, fail, log, passed

MEMBERS = 8
ta, tb = compat.topic("-a"), compat.topic("-b")
group = compat.topic("-group")
for t in (ta, tb):
    ck.create_topic(t, 8)
    ck.wait_partitions(ck.admin(), t, 8)
want = {(t, p) for t in (ta, tb) for p in range(8)}
owners = {}


def make(name):
    owners[name] = set()
    c = Consumer({"bootstrap.servers": compat.bootstrap(), "group.id": group, "client.id": name,
                  "partition.assignment.strategy": "cooperative-sticky", "session.timeout.ms": 10000,
                  "heartbeat.interval.ms": 500, "enable.auto.commit": False})

    def on_assign(cons, parts):
        got = {(tp.topic, tp.partition) for tp in parts}
        for other, owned in owners.items():
            if other != name and owned & got:
                fail("%s assigned %s while %s still owns %s" % (name, sorted(got & owned), other, sorted(owned)))
        owners[name] |= got

    def on_revoke(cons, parts):
        owners[name] -= {(tp.topic, tp.partition) for tp in parts}

    return c, on_assign, on_revoke


def settle(consumers, seconds, balanced):
    dl = Deadline(seconds)
    while not dl.expired():
        for c, _, _ in consumers:
            c.poll(0.05)
        loads = sorted(len(o) for o in owners.values())
        if balanced(loads) and set().union(*owners.values()) == want:
            return
    fail("no convergence after %d s: loads %s" % (seconds, {n: len(o) for n, o in sorted(owners.items())}))


t0 = time.monotonic()
consumers = []
for i in range(MEMBERS):
    c, on_assign, on_revoke = make("m%d" % i)
    c.subscribe([ta], on_assign=on_assign, on_revoke=on_revoke)
    consumers.append((c, on_assign, on_revoke))
    for cc, _, _ in consumers:
        cc.poll(0.05)
    if i % 2 == 1:
        c.subscribe([ta, tb], on_assign=on_assign, on_revoke=on_revoke)
for c, on_assign, on_revoke in consumers:
    c.subscribe([ta, tb], on_assign=on_assign, on_revoke=on_revoke)
    c.poll(0.05)
log("churn done after %.1fs; waiting for 2 partitions per member" % (time.monotonic() - t0))
settle(consumers, 120, lambda loads: loads == [2] * MEMBERS)
log("8 members converged to 2 partitions each after %.1fs" % (time.monotonic() - t0))

abandoned = compat.abandon_member_id(group, [ta, tb])
t1 = time.monotonic()
log("member id %s handed out and abandoned; a 9th member joins" % abandoned)
c, on_assign, on_revoke = make("m8")
c.subscribe([ta, tb], on_assign=on_assign, on_revoke=on_revoke)
consumers.append((c, on_assign, on_revoke))
settle(consumers, 45, lambda loads: loads[0] >= 1 and loads[-1] - loads[0] <= 1)
log("9 members share the partitions %.1fs after the abandoned id" % (time.monotonic() - t1))
for c, _, _ in consumers:
    c.close()
passed("8 cooperative members converged to 2 partitions each; with an abandoned member id pending, "
       "a 9th joined and the 9 rebalanced in %.1fs" % (time.monotonic() - t1))
