#!/usr/bin/env python3
"""aiokafka AIOKafkaAdminClient: create a topic with config overrides, describe its
configs (value + DYNAMIC_TOPIC_CONFIG source, a default) and the broker's, describe
the cluster (Metadata), refuse an unknown config with INVALID_CONFIG, delete the
topic, and create it again under the same name (from offset 0). aiokafka's admin
returns raw responses: error codes are checked here."""

from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

import aio_helpers as ah
import compat
from compat import fail, log, passed

DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5
INVALID_CONFIG = 40


def configs(responses, rtype, name):
    """{config name: (value, source)} of one resource from DescribeConfigs responses."""
    for resp in responses:
        for res in resp.to_object()["resources"]:
            if res["resource_type"] == rtype and res["resource_name"] == name:
                if res["error_code"]:
                    fail("describe_configs(%s): error %d %s" % (name, res["error_code"], res["error_message"]))
                return {e["config_names"]: (e["config_value"], e["config_source"]) for e in res["config_entries"]}
    fail("describe_configs returned no resource %d %s: %r" % (rtype, name, responses))


async def main():
    topic = compat.topic("-admin")
    a = await ah.admin()
    log("creating %s with segment.bytes=1048576, retention.ms=3600000" % topic)
    await ah.create_topic_with(a, NewTopic(topic, 2, 1, topic_configs={"segment.bytes": "1048576", "retention.ms": "3600000"}))
    await ah.wait_partitions(a, topic, 2)

    cfg = configs(await ah.bounded(a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]), 30, "describe_configs"),
                  ConfigResourceType.TOPIC, topic)
    if cfg.get("segment.bytes") != ("1048576", DYNAMIC_TOPIC_CONFIG):
        fail("describe_configs(topic): segment.bytes (value, source) = %r, expected ('1048576', DYNAMIC_TOPIC_CONFIG=1)" % (cfg.get("segment.bytes"),))
    if cfg.get("retention.ms", (None,))[0] != "3600000":
        fail("describe_configs(topic): retention.ms = %r" % (cfg.get("retention.ms"),))
    if cfg.get("cleanup.policy") != ("delete", DEFAULT_CONFIG):
        fail("describe_configs(topic): cleanup.policy = %r, expected ('delete', DEFAULT_CONFIG=5)" % (cfg.get("cleanup.policy"),))

    cluster = await a.describe_cluster()
    brokers = cluster.get("brokers") or []
    if not brokers:
        fail("describe_cluster() lists no brokers: %r" % (cluster,))
    bid = brokers[0]["node_id"]
    bcfg = configs(await ah.bounded(a.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(bid))]), 30, "describe_configs"),
                   ConfigResourceType.BROKER, str(bid))
    if bcfg.get("num.partitions", (None,))[0] != "1":
        fail("describe_configs(broker %d): num.partitions = %r, expected '1'" % (bid, bcfg.get("num.partitions")))

    bad = compat.topic("-badcfg")
    resp = await ah.bounded(a.create_topics([NewTopic(bad, 1, 1, topic_configs={"no.such.config": "1"})]), 30, "create_topics")
    codes = [t[1] if isinstance(t, tuple) else t["error_code"] for t in resp.topic_errors]
    if codes != [INVALID_CONFIG]:
        fail("creating a topic with an unknown config gave error codes %s, expected [INVALID_CONFIG=40]: %r" % (codes, resp))

    log("deleting %s" % topic)
    resp = await ah.bounded(a.delete_topics([topic]), 30, "delete_topics")
    if any(t[1] for t in resp.topic_error_codes):
        fail("delete_topics: %r" % (resp,))
    if topic in await a.list_topics():
        fail("deleted topic %s is still listed" % topic)
    await ah.create_topic_with(a, NewTopic(topic, 1, 1))
    await ah.wait_partitions(a, topic, 1)
    await a.close()
    p = await ah.producer()
    reports = await ah.produce_all(p, topic, [{"key": b"k", "value": b"fresh"}])
    await ah.bounded(p.stop(), 30, "producer stop")
    if reports != [(0, 0)]:
        fail("re-created topic should start at offset 0, got %r" % reports)
    passed("configs described (topic + broker %d), unknown config refused, delete + re-create ok" % bid)


ah.run(main())
