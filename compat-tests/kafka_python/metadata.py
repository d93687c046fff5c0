#!/usr/bin/env python3
"""kafka-python: a topic created with 3 partitions is listed by
KafkaAdminClient.list_topics() and described with 3 partitions; an
auto-created topic shows 1 partition; the cluster lists a broker."""

import compat
import kp_helpers as kp
from compat import fail, log, passed

topic = compat.topic("-created")
auto_topic = compat.topic("-auto")
log("creating %s with 3 partitions" % topic)
a = kp.create_topic(topic, 3)
kp.wait_partitions(topic, 3, admin_client=a)

names = a.list_topics()
if topic not in names:
    fail("list_topics() does not include %s (has %d topics: %s)" % (topic, len(names), sorted(names)[:20]))

cluster = a.describe_cluster()
brokers = cluster.get("brokers") or []
if not brokers:
    fail("describe_cluster() lists no brokers: %r" % (cluster,))

p = kp.producer()
kp.produce_all(p, auto_topic, [{"key": b"k", "value": b"v"}])
p.close(timeout=10)
kp.wait_partitions(auto_topic, 1, admin_client=a)
if auto_topic not in a.list_topics():
    fail("list_topics() does not include auto-created %s" % auto_topic)
passed("created topic has 3 partitions, auto-created topic 1, %d broker(s)" % len(brokers))
