#!/usr/bin/env python3
"""kafka-python pattern subscription (subscribe(pattern="^prefix-(a|b|c)$"), classic
protocol: the client matches topic names from its metadata): the member gets the
partitions of the matching topics only, and picks up a matching topic created later
(metadata_max_age_ms=1000)."""

from kafka import ConsumerRebalanceListener, KafkaConsumer

import compat
import kp_helpers as kp
from compat import Deadline, fail, passed

prefix = compat.topic("-rx")
for suffix in ("a", "b", "other"):
    a = kp.create_topic("%s-%s" % (prefix, suffix), 2)
    kp.wait_partitions("%s-%s" % (prefix, suffix), 2, admin_client=a)
owned = set()


class Listener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        owned.difference_update((tp.topic, tp.partition) for tp in revoked)

    def on_partitions_assigned(self, assigned):
        owned.update((tp.topic, tp.partition) for tp in assigned)


c = KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=prefix + "-group", enable_auto_commit=False,
                  metadata_max_age_ms=1000, session_timeout_ms=10000, heartbeat_interval_ms=500)
c.subscribe(pattern="^%s-(a|b|c)$" % prefix.replace(".", "\\."), listener=Listener())


def wait_for(want, timeout=60):
    dl = Deadline(timeout)
    while not dl.expired():
        # A long poll timeout on purpose: kafka-python 3.0.12 never completes a rejoin
        # caused by a subscription change (the new topic c) when a poll() times out
        # between its JoinGroup and the SyncGroup response (need_rejoin() is already
        # False on the next poll): it stays REBALANCING until its session expires.
        c.poll(timeout_ms=1000)
        if owned == want:
            return
    co = c._coordinator
    fail("expected %s, own %s; subscription %s, assignment %s, coordinator state %s, %s" % (
        sorted(want), sorted(owned), c.subscription(), c.assignment(), getattr(co, "state", "?"),
        getattr(co, "_generation", "?")))


ab = {("%s-%s" % (prefix, t), p) for t in ("a", "b") for p in (0, 1)}
wait_for(ab)
kp.create_topic(prefix + "-c", 2)
wait_for(ab | {(prefix + "-c", p) for p in (0, 1)})
c.close(autocommit=False)
passed("pattern matched a and b (not other), then picked up c created later")
