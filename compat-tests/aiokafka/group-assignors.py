#!/usr/bin/env python3
"""aiokafka client-side assignors: for range, roundrobin and sticky, a first member
takes all 4 partitions, a second joins, and they end with 2 each, disjoint and
covering the topic. Members are tasks in one event loop (aiokafka rebalances in
the background; getmany() just keeps them polling)."""

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

import aio_helpers as ah
import compat
from compat import Deadline, fail, log, passed


async def check(name, assignor, a):
    topic = compat.topic("-" + name)
    group = compat.topic("-" + name + "-group")
    await ah.create_topic(a, topic, 4)
    await ah.wait_partitions(a, topic, 4)
    owners, stops, tasks = {}, [], []

    class Listener(ConsumerRebalanceListener):
        def __init__(self, member):
            self.member = member

        def on_partitions_revoked(self, revoked):
            owners[self.member] -= {tp.partition for tp in revoked}

        def on_partitions_assigned(self, assigned):
            owners[self.member] |= {tp.partition for tp in assigned}

    async def member(m):
        owners[m] = set()
        # aiokafka's sticky assignor keeps its previous assignment in class attributes:
        # give each member (all in this process) its own subclass, as separate processes would have.
        own_assignor = type("%s_%s" % (assignor.__name__, m), (assignor,), {})
        c = AIOKafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=group, client_id=m,
                             partition_assignment_strategy=(own_assignor,), session_timeout_ms=10000,
                             heartbeat_interval_ms=500, enable_auto_commit=False)
        await ah.bounded(c.start(), 30, "%s start" % m)
        c.subscribe([topic], listener=Listener(m))
        stop = asyncio.Event()

        async def loop():
            try:
                while not stop.is_set():
                    await c.getmany(timeout_ms=100)
            finally:
                await asyncio.wait_for(c.stop(), 30)

        stops.append(stop)
        tasks.append(asyncio.create_task(loop()))

    async def settle(want, timeout=60):
        dl = Deadline(timeout)
        while not dl.expired():
            if [len(owners[n]) for n in sorted(owners)] == want:
                return
            await asyncio.sleep(0.1)
        fail("%s: expected loads %s, owners %s" % (name, want, owners))

    await member("a")
    await settle([4])
    await member("b")
    await settle([2, 2])
    final = {n: sorted(o) for n, o in owners.items()}
    for s in stops:
        s.set()
    await ah.bounded(asyncio.gather(*tasks), 40, "members stop")
    if set(final["a"]) & set(final["b"]) or set(final["a"]) | set(final["b"]) != set(range(4)):
        fail("%s: final assignment %s" % (name, final))
    log("%s: %s" % (name, final))
    return "%s %s/%s" % (name, final["a"], final["b"])


async def main():
    a = await ah.admin()
    results = []
    for name, assignor in (("range", RangePartitionAssignor), ("roundrobin", RoundRobinPartitionAssignor),
                           ("sticky", StickyPartitionAssignor)):
        results.append(await check(name, assignor, a))
    await a.close()
    passed("; ".join(results))


ah.run(main())
