#!/usr/bin/env python3
"""aiokafka: a group member commits offset 60 (with metadata) after 60 of 100
records; the broker is restarted (SIGTERM); a new member resumes exactly at offset
60 and committed() still returns offset and metadata. Reports the time from
subscribe to the first assignment (initial rebalance delay 3 s)."""

import asyncio
import os
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata

import aio_helpers as ah
import compat
from broker import OwnBroker
from compat import Deadline, fail, log, passed


async def main(own):
    topic = compat.topic("-resume")
    group = compat.topic("-resume-group")
    a = await ah.admin(own.bootstrap)
    await ah.create_topic(a, topic, 1)
    await ah.wait_partitions(a, topic, 1)
    await a.close()
    p = await ah.producer(own.bootstrap)
    await ah.produce_all(p, topic, [{"key": b"k%d" % i, "value": b"v%d" % i} for i in range(100)])
    await ah.bounded(p.stop(), 30, "producer stop")

    class Timer(ConsumerRebalanceListener):
        def __init__(self):
            self.started, self.assigned = time.monotonic(), []

        def on_partitions_revoked(self, revoked):
            pass

        def on_partitions_assigned(self, assigned):
            self.assigned.append(time.monotonic() - self.started)

    async def member():
        c = AIOKafkaConsumer(bootstrap_servers=own.bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False)
        await ah.bounded(c.start(), 30, "consumer start")
        timer = Timer()
        c.subscribe([topic], listener=timer)
        return c, timer

    async def take(c, n, timeout=60):
        got = []
        dl = Deadline(timeout)
        while len(got) < n and not dl.expired():
            for recs in (await c.getmany(timeout_ms=200, max_records=n - len(got))).values():
                got.extend(recs)
        return got

    c, timer = await member()
    first = await take(c, 60)
    if [r.offset for r in first] != list(range(60)):
        fail("first member read offsets %s" % [r.offset for r in first][:10])
    join_s = timer.assigned[0] if timer.assigned else float("nan")
    await ah.bounded(c.commit({TopicPartition(topic, 0): OffsetAndMetadata(60, "resume-test")}), 30, "commit")
    await ah.bounded(c.stop(), 30, "consumer stop")

    log("restarting the broker")
    own.restart()
    c, _ = await member()
    rest = await take(c, 40)
    extra = await take(c, 1, timeout=2)
    committed = await ah.bounded(c._coordinator.fetch_committed_offsets([TopicPartition(topic, 0)]), 30, "fetch committed")
    await ah.bounded(c.stop(), 30, "consumer stop")
    offsets = [r.offset for r in rest]
    if offsets != list(range(60, 100)) or extra:
        fail("after restart got offsets %s%s, expected 60..99" % (offsets[:5], " and more" if extra else ""))
    oam = committed.get(TopicPartition(topic, 0))
    if oam is None or oam.offset != 60 or oam.metadata != "resume-test":
        fail("committed offset/metadata after restart: %r" % (committed,))
    if not join_s <= 3.0 + 5.0:
        fail("first assignment took %.2fs, far beyond the 3 s initial rebalance delay" % join_s)
    passed("resumed at offset 60 after restart, commit metadata preserved; subscribe→assignment %.2fs (initial delay 3 s)" % join_s)


own = OwnBroker().start()
# compat.passed()/fail() end the process with os._exit(), which skips `finally`:
# stop and remove the own broker on that path too (the runner would kill it with the
# process group anyway, but not when the script runs by hand).
_os_exit = os._exit


def _exit_closing_broker(code):
    try:
        own.close()
    finally:
        _os_exit(code)


os._exit = _exit_closing_broker
ah.run(main(own))
