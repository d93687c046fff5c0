#!/usr/bin/env python3
"""confluent-kafka AdminClient: CreatePartitions (1 → 3, shrink refused),
IncrementalAlterConfigs (SET then DELETE), DeleteRecords (earliest offset moves)."""

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, ResourceType

import compat
import ck_helpers as ck
from compat import fail, passed

topic = compat.topic("-ops")
a = ck.create_topic(topic, 1)
ck.wait_partitions(a, topic, 1)
ck.produce_all(ck.producer(), topic, [{"key": None, "value": b"v%d" % i, "partition": 0} for i in range(10)])

a.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=30)
ck.wait_partitions(a, topic, 3)
try:
    a.create_partitions([NewPartitions(topic, 2)])[topic].result(timeout=30)
    fail("shrinking to 2 partitions succeeded")
except KafkaException as e:
    if e.args[0].code() != 37:
        fail("shrinking gave %s, expected INVALID_PARTITIONS" % e.args[0])


def topic_config(name):
    res = a.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    return list(res.values())[0].result(timeout=30)[name]


set_op = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
list(a.incremental_alter_configs([set_op]).values())[0].result(timeout=30)
entry = topic_config("retention.ms")
if entry.value != "1000" or entry.source != 1:
    fail("after SET retention.ms is %r from source %r" % (entry.value, entry.source))
del_op = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
list(a.incremental_alter_configs([del_op]).values())[0].result(timeout=30)
if topic_config("retention.ms").value != "604800000":
    fail("after DELETE retention.ms is %r, expected the default" % topic_config("retention.ms").value)

res = a.delete_records([TopicPartition(topic, 0, 6)])
done = list(res.values())[0].result(timeout=30)
low = getattr(done, "low_watermark", getattr(done, "offset", None))
if low != 6:
    fail("delete_records low watermark %r, expected 6" % (done,))
c = ck.consumer()
lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
c.close()
if (lo, hi) != (6, 10):
    fail("watermarks after delete_records: %s" % ((lo, hi),))
passed("create_partitions 1→3 (shrink refused), incremental SET/DELETE, delete_records (watermarks 6..10)")
