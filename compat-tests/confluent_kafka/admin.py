#!/usr/bin/env python3
"""confluent-kafka AdminClient: create a topic with config overrides, describe
its configs and the broker's, describe the cluster, reject an unknown config,
delete the topic, and create it again under the same name."""

from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType
from confluent_kafka import KafkaException

import time

import compat
import ck_helpers as ck
from compat import fail, log, passed

topic = compat.topic("-admin")
a = ck.admin()
log("creating %s with segment.bytes=1048576, retention.ms=3600000" % topic)
fs = a.create_topics([NewTopic(topic, 2, compat.replication_factor(), config={"segment.bytes": "1048576", "retention.ms": "3600000"})])
fs[topic].result(timeout=30)
ck.wait_partitions(a, topic, 2)

res = a.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
configs = list(res.values())[0].result(timeout=30)
seg = configs.get("segment.bytes")
if seg is None or seg.value != "1048576":
    fail("describe_configs: segment.bytes is %r, expected '1048576'" % (seg and seg.value))
if seg.source != 1:  # DYNAMIC_TOPIC_CONFIG
    fail("describe_configs: segment.bytes source is %r, expected DYNAMIC_TOPIC_CONFIG (1)" % seg.source)
if configs.get("retention.ms") is None or configs["retention.ms"].value != "3600000":
    fail("describe_configs: retention.ms not reported as set")
if configs.get("cleanup.policy") is None or configs["cleanup.policy"].value != "delete" or not configs["cleanup.policy"].is_default:
    fail("describe_configs: cleanup.policy should be the default 'delete'")

res = a.describe_configs([ConfigResource(ResourceType.BROKER, "1")])
broker_cfg = list(res.values())[0].result(timeout=30)
if "num.partitions" not in broker_cfg or broker_cfg["num.partitions"].value != "1":
    fail("broker describe_configs: num.partitions missing or not 1: %r" % broker_cfg.get("num.partitions"))

cluster = a.describe_cluster().result(timeout=30)
if not cluster.nodes or not cluster.cluster_id:
    fail("describe_cluster returned no nodes or no cluster id: %r" % (cluster,))

bad = compat.topic("-badcfg")
try:
    a.create_topics([NewTopic(bad, 1, 1, config={"no.such.config": "1"})])[bad].result(timeout=30)
    fail("creating a topic with an unknown config succeeded")
except KafkaException as e:
    if e.args[0].code() != 40:  # INVALID_CONFIG
        fail("unknown config gave %s, expected INVALID_CONFIG" % e.args[0])

log("deleting %s" % topic)
a.delete_topics([topic])[topic].result(timeout=30)
# A single node lists what it just deleted no more. In a cluster (as in Kafka) the answer
# comes once the controller committed the deletion, and librdkafka may ask a broker whose
# metadata image applies it a moment later: wait for it there (bounded).
dl = compat.Deadline(0 if compat.replication_factor() == 1 else 15)
while topic in a.list_topics(timeout=10).topics:
    if dl.expired():
        fail("deleted topic %s is still listed" % topic)
    time.sleep(0.1)
fs = a.create_topics([NewTopic(topic, 1, compat.replication_factor())])
fs[topic].result(timeout=30)
ck.wait_partitions(a, topic, 1)
p = ck.producer()
reports = ck.produce_all(p, topic, [{"key": b"k", "value": b"fresh"}])
if reports != [(0, 0)]:
    fail("re-created topic should start at offset 0, delivery reports %r" % reports)
passed("configs described (topic + broker), cluster %s, unknown config refused, delete + re-create ok" % cluster.cluster_id)
