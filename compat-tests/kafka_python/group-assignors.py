#!/usr/bin/env python3
"""kafka-python client-side assignors: for range, roundrobin and sticky, a first
member takes all 4 partitions, a second joins, and they end with 2 each, disjoint
and covering the topic. One thread per member, as kafka-python joins inside poll()."""

import threading
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

import compat
import kp_helpers as kp
from compat import Deadline, fail, log, passed

results = []
for name, assignor in (("range", RangePartitionAssignor), ("roundrobin", RoundRobinPartitionAssignor),
                       ("sticky", StickyPartitionAssignor)):
    topic = compat.topic("-" + name)
    group = compat.topic("-" + name + "-group")
    a = kp.create_topic(topic, 4)
    kp.wait_partitions(topic, 4, admin_client=a)
    owners, lock, stops, threads = {}, threading.Lock(), [], []

    class Listener(ConsumerRebalanceListener):
        def __init__(self, member):
            self.member = member

        def on_partitions_revoked(self, revoked):
            with lock:
                owners[self.member] -= {tp.partition for tp in revoked}

        def on_partitions_assigned(self, assigned):
            with lock:
                owners[self.member] |= {tp.partition for tp in assigned}

    def member(m):
        owners[m] = set()
        stop = threading.Event()
        c = KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=group, client_id=m,
                          partition_assignment_strategy=[assignor], session_timeout_ms=10000,
                          heartbeat_interval_ms=500, enable_auto_commit=False)
        c.subscribe([topic], listener=Listener(m))

        def loop():
            while not stop.is_set():
                c.poll(timeout_ms=100)
            c.close(autocommit=False)

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        stops.append(stop)
        threads.append(t)

    def settle(want, timeout=60):
        dl = Deadline(timeout)
        while not dl.expired():
            with lock:
                if [len(owners[n]) for n in sorted(owners)] == want:
                    return
            time.sleep(0.1)
        fail("%s: expected loads %s, owners %s" % (name, want, owners))

    member("a")
    settle([4])
    member("b")
    settle([2, 2])
    with lock:
        final = {n: sorted(o) for n, o in owners.items()}
    for s in stops:
        s.set()
    for t in threads:
        t.join(timeout=30)
    if set(final["a"]) & set(final["b"]) or set(final["a"]) | set(final["b"]) != set(range(4)):
        fail("%s: final assignment %s" % (name, final))
    log("%s: %s" % (name, final))
    results.append("%s %s/%s" % (name, final["a"], final["b"]))
passed("; ".join(results))
