#!/usr/bin/env python3
"""confluent-kafka client-side assignors over the classic protocol: for range,
roundrobin and cooperative-sticky (incremental rebalancing), a first member takes
all 4 partitions, a second joins, and they end with 2 each, disjoint and covering
the topic, without a partition ever being owned by both at once."""

import time

from confluent_kafka import Consumer

import compat
import ck_helpers as ck
from compat import Deadline, fail, log, passed

results = []
for strategy in ("range", "roundrobin", "cooperative-sticky"):
    topic = compat.topic("-" + strategy)
    group = compat.topic("-" + strategy + "-group")
    ck.create_topic(topic, 4)
    ck.wait_partitions(ck.admin(), topic, 4)
    owners = {}
    incremental = strategy == "cooperative-sticky"

    def make(name):
        owners[name] = set()
        c = Consumer({"bootstrap.servers": compat.bootstrap(), "group.id": group, "client.id": name,
                      "partition.assignment.strategy": strategy, "session.timeout.ms": 10000,
                      "heartbeat.interval.ms": 500, "enable.auto.commit": False,
                      # A rare hang in close() after cooperative-sticky (seen once under
                      # load, issue 20): keep librdkafka's group state in the log.
                      "debug": "cgrp"})

        def on_assign(cons, parts):
            got = {tp.partition for tp in parts}
            for other, owned in owners.items():
                if other != name and owned & got:
                    fail("%s: %s assigned %s while %s still owns %s" % (strategy, name, sorted(got), other, sorted(owned)))
            owners[name] = owners[name] | got if incremental else got

        def on_revoke(cons, parts):
            owners[name] -= {tp.partition for tp in parts}

        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        return c

    def settle(consumers, want, timeout=60):
        dl = Deadline(timeout)
        while not dl.expired():
            for c in consumers:
                c.poll(0.05)
            if [len(owners[n]) for n in sorted(owners)] == want:
                return
        fail("%s: expected loads %s, owners %s" % (strategy, want, {n: sorted(o) for n, o in owners.items()}))

    t0 = time.monotonic()
    a = make("a")
    settle([a], [4])
    b = make("b")
    settle([a, b], [2, 2])
    if owners["a"] & owners["b"] or owners["a"] | owners["b"] != set(range(4)):
        fail("%s: final assignment %s" % (strategy, owners))
    log("%s: %s in %.1fs" % (strategy, {n: sorted(o) for n, o in owners.items()}, time.monotonic() - t0))
    results.append("%s %s/%s" % (strategy, sorted(owners["a"]), sorted(owners["b"])))
    a.close()
    b.close()
passed("; ".join(results))
