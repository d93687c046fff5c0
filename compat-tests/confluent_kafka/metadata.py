#!/usr/bin/env python3
"""confluent-kafka: a topic created with 3 partitions is listed (all-topics
list_topics and per-topic) with 3 partitions, each led by a listed broker;
an auto-created topic shows 1 partition."""

import compat
import ck_helpers as ck
from compat import fail, log, passed

topic = compat.topic("-created")
auto_topic = compat.topic("-auto")
log("creating %s with 3 partitions" % topic)
a = ck.create_topic(topic, 3)
ck.wait_partitions(a, topic, 3)

md = a.list_topics(timeout=10)
if not md.brokers:
    fail("metadata lists no brokers")
for b in md.brokers.values():
    if not b.host or b.port <= 0:
        fail("broker %d has bad address %s:%s" % (b.id, b.host, b.port))
if topic not in md.topics:
    fail("all-topics metadata does not list %s (has %d topics: %s)" % (topic, len(md.topics), sorted(md.topics)[:20]))
if len(md.topics[topic].partitions) != 3:
    fail("all-topics metadata: %s has %d partitions, expected 3" % (topic, len(md.topics[topic].partitions)))

p = ck.producer()
ck.produce_all(p, auto_topic, [{"key": b"k", "value": b"v"}])
ck.wait_partitions(p, auto_topic, 1)
md = a.list_topics(timeout=10)
if auto_topic not in md.topics:
    fail("all-topics metadata does not list auto-created %s" % auto_topic)
passed("created topic has 3 partitions, auto-created topic 1, brokers %s" % sorted(
    "%d=%s:%d" % (b.id, b.host, b.port) for b in md.brokers.values()))
