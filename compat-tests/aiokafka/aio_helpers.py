"""aiokafka helpers shared by the scenarios in this dir (asyncio).

Producers use enable_idempotence=True (aiokafka's default is off with acks=1;
idempotence implies acks=all and exercises InitProducerId and sequences). Consumers for the non-group scenarios
use group_id=None + assign() + seek_to_beginning(): no consumer group, nothing
committed. Every await that talks to the broker is bounded (asyncio.wait_for).
"""

import asyncio
import logging
import os

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import compat
from compat import Deadline, fail, log

logging.basicConfig(level=getattr(logging, os.environ.get("AIOKAFKA_LOG_LEVEL", "WARNING").upper(), logging.WARNING),
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")


def run(coro):
    """Run a scenario's main coroutine; an unexpected exception is a failure."""
    try:
        asyncio.run(coro)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        fail("unexpected error: %r" % (e,))
    fail("scenario ended without a verdict")


async def bounded(aw, seconds, what):
    try:
        return await asyncio.wait_for(aw, seconds)
    except asyncio.TimeoutError:
        fail("%s: no result within %ss" % (what, seconds))


async def producer(bootstrap=None, **extra):
    extra.setdefault("enable_idempotence", True)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap or compat.bootstrap(), request_timeout_ms=30000, **extra)
    await bounded(p.start(), 30, "producer start")
    return p


async def admin(bootstrap=None):
    a = AIOKafkaAdminClient(bootstrap_servers=bootstrap or compat.bootstrap(), request_timeout_ms=30000)
    await bounded(a.start(), 30, "admin start")
    return a


async def produce_all(p, topic, records, timeout=120):
    """records: iterable of dicts with key, value, optional headers, ts, partition.
    Queues every record (send()), then awaits every delivery. Returns
    [(partition, offset)] in produce order."""
    dl = Deadline(timeout)
    futures = []
    for r in records:
        futures.append(await bounded(p.send(topic, key=r["key"], value=r["value"], headers=r.get("headers"),
                                            timestamp_ms=r.get("ts"), partition=r.get("partition")),
                                     max(1.0, dl.left()), "queueing message %d" % len(futures)))
    reports = []
    for i, f in enumerate(futures):
        try:
            md = await asyncio.wait_for(f, max(0.1, dl.left()))
        except Exception as e:  # noqa: BLE001
            fail("delivery failed for message index %d: %r" % (i, e))
        reports.append((md.partition, md.offset))
    return reports


async def consume_all(topic, partitions, expected_total, timeout=120, bootstrap=None):
    """assign() + seek_to_beginning() on `partitions` (no group), getmany() until
    `expected_total` records arrived and every position reached its end offset (then
    one short extra poll so unexpected records show up), or the timeout. Returns
    ({partition: [record]}, {partition: (beginning_offset, end_offset)})."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap or compat.bootstrap(), group_id=None,
                         enable_auto_commit=False, auto_offset_reset="earliest")
    await bounded(c.start(), 30, "consumer start")
    tps = [TopicPartition(topic, p) for p in partitions]
    c.assign(tps)
    await bounded(c.seek_to_beginning(*tps), 30, "seek_to_beginning")
    got = {p: [] for p in partitions}
    total = 0
    dl = Deadline(timeout)
    ends = None
    while not dl.expired():
        for tp, recs in (await c.getmany(timeout_ms=500, max_records=2000)).items():
            got.setdefault(tp.partition, []).extend(recs)
            total += len(recs)
        if total >= expected_total:
            if ends is None:
                ends = await bounded(c.end_offsets(tps), 30, "end_offsets")
            if all([await c.position(tp) >= ends[tp] for tp in tps]):
                for tp, recs in (await c.getmany(timeout_ms=300)).items():
                    got.setdefault(tp.partition, []).extend(recs)
                    total += len(recs)
                break
    else:
        log("consume timed out after %ds with %d/%d records" % (timeout, total, expected_total))
    beg = await bounded(c.beginning_offsets(tps), 30, "beginning_offsets")
    ends = await bounded(c.end_offsets(tps), 30, "end_offsets")
    wm = {tp.partition: (beg[tp], ends[tp]) for tp in tps}
    await bounded(c.stop(), 30, "consumer stop")
    return got, wm


async def create_topic(a, topic, partitions, timeout=30):
    await create_topic_with(a, NewTopic(name=topic, num_partitions=partitions, replication_factor=1), timeout)


async def create_topic_with(a, new_topic, timeout=30):
    """create_topics([new_topic]); aiokafka returns the raw response: fail on an error code."""
    try:
        resp = await bounded(a.create_topics([new_topic], timeout_ms=timeout * 1000), timeout + 5, "create_topics")
    except Exception as e:  # noqa: BLE001
        fail("create_topics(%s, %d partitions) failed: %r" % (new_topic.name, new_topic.num_partitions, e))
    errs = [t for t in resp.to_object()["topic_errors"] if t.get("error_code")]
    if errs:
        fail("create_topics(%s) returned errors: %s" % (new_topic.name, errs))
    log("create_topics response: %s" % (resp,))


async def wait_partitions(a, topic, n, timeout=30):
    """Wait until Metadata (describe_topics) shows `topic` without error and with n
    partitions, each with a leader. Returns the topic's metadata dict."""
    dl = Deadline(timeout)
    seen = "nothing"
    while True:
        try:
            tops = [t for t in await bounded(a.describe_topics([topic]), 30, "describe_topics") if t.get("topic") == topic]
            if not tops:
                seen = "topic not in metadata"
            else:
                t = tops[0]
                parts = t.get("partitions") or []
                if t.get("error_code", 0) != 0:
                    seen = "topic error_code %s" % t.get("error_code")
                elif len(parts) != n:
                    seen = "%d partitions" % len(parts)
                elif any(pp.get("error_code", 0) != 0 or pp.get("leader", -1) < 0 for pp in parts):
                    seen = "partition error/no leader: %s" % parts
                else:
                    return t
        except Exception as e:  # noqa: BLE001
            seen = "error %r" % e
        if dl.expired():
            fail("metadata for %s: expected %d partitions with leaders, last saw: %s" % (topic, n, seen))
        await asyncio.sleep(0.3)
