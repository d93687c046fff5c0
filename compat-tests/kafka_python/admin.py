#!/usr/bin/env python3
"""kafka-python KafkaAdminClient: create a topic with config overrides,
describe its configs and the broker's, delete it, create it again."""

from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

import compat
import kp_helpers as kp
from compat import fail, log, passed

topic = compat.topic("-admin")
a = kp.admin()
log("creating %s with segment.bytes=1048576" % topic)
a.create_topics([NewTopic(topic, 2, compat.replication_factor(), topic_configs={"segment.bytes": "1048576"})])
kp.wait_partitions(topic, 2, admin_client=a)


def config_map(resp, kind, name):
    """kafka-python 3 returns {kind: {name: {config: {value, config_source, ...}}}}."""
    try:
        return resp[kind][name]
    except (KeyError, TypeError):
        fail("describe_configs returned no %s %s: %r" % (kind, name, resp))


topic_cfg = config_map(a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]), "topic", topic)
seg = topic_cfg.get("segment.bytes") or {}
if seg.get("value") != "1048576" or seg.get("config_source") != "DYNAMIC_TOPIC_CONFIG":
    fail("describe_configs(topic): segment.bytes = %r, expected '1048576' from DYNAMIC_TOPIC_CONFIG" % seg)
# kafka-python shows only modified configs unless asked for all of them.
broker_cfg = config_map(a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all"), "broker", "1")
auto = broker_cfg.get("auto.create.topics.enable") or {}
if auto.get("value") != "true":
    fail("describe_configs(broker): auto.create.topics.enable = %r" % auto)

log("deleting %s" % topic)
a.delete_topics([topic])
if topic in a.list_topics():
    fail("deleted topic %s is still listed" % topic)
a.create_topics([NewTopic(topic, 1, compat.replication_factor())])
kp.wait_partitions(topic, 1, admin_client=a)
p = kp.producer()
meta = p.send(topic, key=b"k", value=b"fresh").get(timeout=30)
if (meta.partition, meta.offset) != (0, 0):
    fail("re-created topic should start at offset 0, got %r" % ((meta.partition, meta.offset),))
passed("topic and broker configs described, delete + re-create ok")
