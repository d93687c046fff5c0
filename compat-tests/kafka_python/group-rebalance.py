#!/usr/bin/env python3
"""kafka-python consumer group: three members on a 6-partition topic get two
partitions each; one leaves and the other two take its partitions over. Commits
are synchronous; a record may be delivered twice only if its commit was lost to a
rebalance, and never to a member that does not own its partition."""

import threading
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.structs import OffsetAndMetadata

import compat
import kp_helpers as kp
from compat import Deadline, fail, log, passed

topic = compat.topic("-grp")
group = compat.topic("-group")
a = kp.create_topic(topic, 6)
kp.wait_partitions(topic, 6, admin_client=a)
p = kp.producer()
for i in range(600):
    p.send(topic, key=b"k%d" % i, value=b"first-%d" % i, partition=i % 6)
p.flush(timeout=60)

delivered, owners, uncommitted = {}, {}, set()
redelivered = 0


class Listener(ConsumerRebalanceListener):
    def __init__(self, name):
        self.name = name
        self.consumer = None

    def on_partitions_revoked(self, revoked):
        owners[self.name] -= {tp.partition for tp in revoked}

    def on_partitions_assigned(self, assigned):
        owners[self.name] |= {tp.partition for tp in assigned}


def make(name):
    c = KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=group, client_id=name,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=10000, heartbeat_interval_ms=500)
    owners[name] = set()
    c.subscribe([topic], listener=Listener(name))
    return c


lock = threading.Lock()
errors = []


def run_member(name, c, stop):
    """One member per thread, as applications run them: kafka-python joins inside poll()."""
    global redelivered
    try:
        while not stop.is_set():
            for tp, recs in c.poll(timeout_ms=100, max_records=50).items():
                for r in recs:
                    key = (r.partition, r.offset)
                    with lock:
                        if r.partition not in owners[name]:
                            errors.append("%s got partition %d it does not own (%s)" % (name, r.partition, sorted(owners[name])))
                        if key in delivered:
                            if key not in uncommitted:
                                errors.append("committed record %s delivered to %s and again to %s" % (key, delivered[key], name))
                            uncommitted.discard(key)
                            redelivered += 1
                        delivered[key] = name
                    try:
                        c.commit({tp: OffsetAndMetadata(r.offset + 1, "", -1)})
                    except Exception as e:  # noqa: BLE001
                        if not any(k in type(e).__name__ for k in ("Rebalance", "IllegalGeneration", "CommitFailed")):
                            errors.append("%s: commit failed: %r" % (name, e))
                        with lock:
                            uncommitted.add(key)
    finally:
        c.close(autocommit=False)


def start(name):
    stop = threading.Event()
    t = threading.Thread(target=run_member, args=(name, make(name), stop), daemon=True)
    t.start()
    return stop, t


def wait(until, timeout, what):
    dl = Deadline(timeout)
    while not dl.expired():
        if errors:
            fail(errors[0])
        with lock:
            if until():
                return
        time.sleep(0.1)
    fail("timed out waiting for %s; owners %s, delivered %d" % (what, {n: sorted(o) for n, o in owners.items()}, len(delivered)))


t0 = time.monotonic()
members = {n: start(n) for n in ("m1", "m2", "m3")}
wait(lambda: len(delivered) == 600 and all(len(owners[n]) == 2 for n in members), 120,
     "3 members with 2 partitions each and all 600 records")
log("3 members: %s after %.1fs" % ({n: sorted(o) for n, o in owners.items()}, time.monotonic() - t0))
log("m3 leaves")
stop3, t3 = members.pop("m3")
stop3.set()
t3.join(timeout=30)
with lock:
    owners.pop("m3")
for i in range(600):
    p.send(topic, key=b"k%d" % i, value=b"second-%d" % i, partition=i % 6)
p.flush(timeout=60)
wait(lambda: len(delivered) == 1200 and all(len(owners[n]) == 3 for n in members), 120,
     "2 members with 3 partitions each and all 1200 records")
with lock:
    final = {n: sorted(o) for n, o in owners.items()}
for stop, t in members.values():
    stop.set()
    t.join(timeout=30)
if errors:
    fail(errors[0])
if set(final["m1"]) & set(final["m2"]) or set(final["m1"]) | set(final["m2"]) != set(range(6)):
    fail("final assignment overlaps or misses partitions: %s" % final)
passed("2+2+2 then 3+3 %s; 1200 records, no committed record twice (%d redelivered after a lost commit)" % (final, redelivered))
