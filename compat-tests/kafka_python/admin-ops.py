#!/usr/bin/env python3
"""kafka-python KafkaAdminClient: CreatePartitions (1 → 3), DescribeTopicPartitions via
describe_topics, AlterConfigs (persisted, visible in DescribeConfigs), DeleteRecords
(consumers then start at the new low watermark), DescribeLogDirs."""

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions

import compat
import kp_helpers as kp
from compat import fail, passed

topic = compat.topic("-ops")
a = kp.create_topic(topic, 1)
kp.wait_partitions(topic, 1, admin_client=a)
p = kp.producer()
for i in range(10):
    p.send(topic, value=b"v%d" % i, partition=0)
p.flush(timeout=30)

a.create_partitions({topic: NewPartitions(3)})
parts = [len(t["partitions"]) for t in a.describe_topics([topic])]
if parts != [3]:
    fail("describe_topics after create_partitions: %s partitions" % parts)

a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "1000"})])
cfg = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
if cfg.get("retention.ms", {}).get("value") != "1000":
    fail("retention.ms after alter_configs: %r" % cfg.get("retention.ms"))

res = a.delete_records({TopicPartition(topic, 0): 4})
low = res[TopicPartition(topic, 0)]["low_watermark"]
if low != 4:
    fail("delete_records low watermark %s, expected 4" % low)
c = KafkaConsumer(bootstrap_servers=compat.bootstrap(), enable_auto_commit=False)
tp = TopicPartition(topic, 0)
c.assign([tp])
c.seek_to_beginning(tp)
if c.beginning_offsets([tp])[tp] != 4 or c.position(tp) != 4:
    fail("after DeleteRecords the earliest offset is %s" % c.beginning_offsets([tp])[tp])
c.close()

dirs = a.describe_log_dirs()
names = {t["name"] for d in dirs for ld in d["log_dirs"] for t in ld["topics"]}
if topic not in names:
    fail("describe_log_dirs does not list %s" % topic)
passed("create_partitions 1→3, describe_topics, alter_configs, delete_records (earliest = 4), describe_log_dirs")
