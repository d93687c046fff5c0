#!/usr/bin/env python3
"""aiokafka: a topic created with 3 partitions is listed by
AIOKafkaAdminClient.list_topics() and described with 3 partitions, each led by a
broker that describe_cluster() lists; an auto-created topic shows 1 partition."""

import aio_helpers as ah
import compat
from compat import fail, log, passed


async def main():
    topic = compat.topic("-created")
    auto_topic = compat.topic("-auto")
    a = await ah.admin()
    log("creating %s with 3 partitions" % topic)
    await ah.create_topic(a, topic, 3)
    t = await ah.wait_partitions(a, topic, 3)

    names = await a.list_topics()
    if topic not in names:
        fail("list_topics() does not include %s (has %d topics: %s)" % (topic, len(names), sorted(names)[:20]))
    cluster = await a.describe_cluster()
    brokers = cluster.get("brokers") or []
    if not brokers:
        fail("describe_cluster() lists no brokers: %r" % (cluster,))
    for b in brokers:
        if not b.get("host") or b.get("port", 0) <= 0:
            fail("broker with bad address: %r" % (b,))
    ids = {b["node_id"] for b in brokers}
    for pp in t["partitions"]:
        if pp["leader"] not in ids:
            fail("partition %d leader %d is not a listed broker %s" % (pp["partition"], pp["leader"], sorted(ids)))

    p = await ah.producer()
    await ah.produce_all(p, auto_topic, [{"key": b"k", "value": b"v"}])
    await ah.bounded(p.stop(), 30, "producer stop")
    await ah.wait_partitions(a, auto_topic, 1)
    if auto_topic not in await a.list_topics():
        fail("list_topics() does not include auto-created %s" % auto_topic)
    await a.close()
    passed("created topic has 3 partitions, auto-created topic 1, brokers %s" % sorted(
        "%d=%s:%d" % (b["node_id"], b["host"], b["port"]) for b in brokers))


ah.run(main())
