#!/usr/bin/env python3
"""aiokafka pattern subscription (subscribe(pattern="^prefix-(a|b|c)$"), classic
protocol: the client matches topic names from its metadata): the member gets the
partitions of the matching topics only, and picks up a matching topic created later
(metadata_max_age_ms=1000)."""

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

import aio_helpers as ah
import compat
from compat import Deadline, fail, passed


async def main():
    prefix = compat.topic("-rx")
    a = await ah.admin()
    for suffix in ("a", "b", "other"):
        await ah.create_topic(a, "%s-%s" % (prefix, suffix), 2)
        await ah.wait_partitions(a, "%s-%s" % (prefix, suffix), 2)
    owned = set()

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            owned.difference_update((tp.topic, tp.partition) for tp in revoked)

        def on_partitions_assigned(self, assigned):
            owned.update((tp.topic, tp.partition) for tp in assigned)

    c = AIOKafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=prefix + "-group", enable_auto_commit=False,
                         metadata_max_age_ms=1000, session_timeout_ms=10000, heartbeat_interval_ms=500)
    await ah.bounded(c.start(), 30, "consumer start")
    c.subscribe(pattern="^%s-(a|b|c)$" % prefix.replace(".", "\\."), listener=Listener())

    async def wait_for(want, timeout=60):
        dl = Deadline(timeout)
        while not dl.expired():
            await c.getmany(timeout_ms=100)
            if owned == want:
                return
        fail("expected %s, own %s" % (sorted(want), sorted(owned)))

    ab = {("%s-%s" % (prefix, t), p) for t in ("a", "b") for p in (0, 1)}
    await wait_for(ab)
    await ah.create_topic(a, prefix + "-c", 2)
    await wait_for(ab | {(prefix + "-c", p) for p in (0, 1)})
    await ah.bounded(c.stop(), 30, "consumer stop")
    await a.close()
    passed("pattern matched a and b (not other), then picked up c created later")


ah.run(main())
