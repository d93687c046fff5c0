#!/usr/bin/env python3
"""kafka-python, classic protocol, cooperative-sticky (incremental rebalancing) under
churn, issue 20 item 6: the same two phases as confluent_kafka/group-cooperative.py.

1. 8 members join one after another while changing their subscriptions (each starts on
   topic a, half switch to a+b at once, then all do). The group must converge to 2 of the
   16 partitions per member, disjoint and covering both topics, and no partition may ever
   be owned by two members at once.
2. A member id handed out with MEMBER_ID_REQUIRED is never used (raw JoinGroup), then a
   9th member joins: the 9 must share the 16 partitions (1 or 2 each) within 45 s, not
   after the rebalance timeout.

Each member is polled by its own thread, and the poll that follows a subscribe() lasts
until the rebalance it starts is over (10 s): kafka-python 3.0.12 loses a rebalance that
completes while no poll() awaits it (see the kafka-python findings in README.md), so
several consumers polled in turn from one thread with short timeouts rebalance forever
(against Kafka too), and a member whose subscription-triggered join outlives its poll
stops heartbeating and is expired while its listener still reports its partitions."""

import queue
import threading
import time

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor

import compat
import kp_helpers as kp
from compat import Deadline, fail, log, passed

MEMBERS = 8
ta, tb = compat.topic("-a"), compat.topic("-b")
group = compat.topic("-group")
for t in (ta, tb):
    a = kp.create_topic(t, 8)
    kp.wait_partitions(t, 8, admin_client=a)
want = {(t, p) for t in (ta, tb) for p in range(8)}
owners = {}
lock = threading.Lock()


class Listener(ConsumerRebalanceListener):
    def __init__(self, name):
        self.name = name
        with lock:
            owners[name] = set()

    def on_partitions_assigned(self, assigned):
        got = {(tp.topic, tp.partition) for tp in assigned}
        with lock:
            for other, owned in owners.items():
                if other != self.name and owned & got:
                    fail("%s assigned %s while %s still owns %s"
                         % (self.name, sorted(got & owned), other, sorted(owned)))
            owners[self.name] |= got

    def on_partitions_revoked(self, revoked):
        with lock:
            owners[self.name] -= {(tp.topic, tp.partition) for tp in revoked}


class Member(threading.Thread):
    """Owns one consumer: applies queued subscriptions and polls it."""

    def __init__(self, name, *subscriptions):
        super().__init__(name="member-" + name, daemon=True)
        self.listener = Listener(name)
        self.consumer = KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=group, client_id=name,
                                      partition_assignment_strategy=[CooperativeStickyAssignor],
                                      session_timeout_ms=10000, heartbeat_interval_ms=500,
                                      enable_auto_commit=False)
        self.todo = queue.Queue()
        self.todo.put(subscriptions)
        self.stopping = False
        self.error = None
        self.start()

    def subscribe(self, *subscriptions):
        self.todo.put(subscriptions)

    def run(self):
        try:
            while not self.stopping:
                try:
                    subscriptions = self.todo.get_nowait()
                except queue.Empty:
                    self.consumer.poll(timeout_ms=1000)
                    continue
                for topics in subscriptions:
                    self.consumer.subscribe(topics, listener=self.listener)
                self.consumer.poll(timeout_ms=10000)
            self.consumer.close(autocommit=False)
        except Exception as e:  # reported by the main thread
            self.error = e


def settle(members, seconds, balanced):
    dl = Deadline(seconds)
    while not dl.expired():
        for m in members:
            if m.error is not None:
                fail("%s: %r" % (m.name, m.error))
        with lock:
            loads = sorted(len(o) for o in owners.values())
            union = set().union(*owners.values())
        if balanced(loads) and union == want:
            return
        time.sleep(0.1)
    fail("no convergence after %d s: loads %s" % (seconds, {n: len(o) for n, o in sorted(owners.items())}))


t0 = time.monotonic()
members = []
for i in range(MEMBERS):
    # Odd members switch to a+b before their first poll, the others later.
    members.append(Member("m%d" % i, [ta], [ta, tb]) if i % 2 == 1 else Member("m%d" % i, [ta]))
    time.sleep(0.3)
for m in members[0::2]:
    m.subscribe([ta, tb])
log("churn done after %.1fs; waiting for 2 partitions per member" % (time.monotonic() - t0))
settle(members, 120, lambda loads: loads == [2] * MEMBERS)
log("8 members converged to 2 partitions each after %.1fs" % (time.monotonic() - t0))

abandoned = compat.abandon_member_id(group, [ta, tb])
t1 = time.monotonic()
log("member id %s handed out and abandoned; a 9th member joins" % abandoned)
members.append(Member("m8", [ta, tb]))
settle(members, 45, lambda loads: loads[0] >= 1 and loads[-1] - loads[0] <= 1)
elapsed = time.monotonic() - t1
log("9 members share the partitions %.1fs after the abandoned id" % elapsed)
for m in members:
    m.stopping = True
passed("8 cooperative members converged to 2 partitions each; with an abandoned member id pending, "
       "a 9th joined and the 9 rebalanced in %.1fs" % elapsed)
