#!/usr/bin/env python3
"""aiokafka AIOKafkaAdminClient: CreatePartitions (1 → 3; shrinking to 2 refused with
INVALID_PARTITIONS), AlterConfigs (retention.ms persisted, DescribeConfigs shows it as
DYNAMIC_TOPIC_CONFIG), DeleteRecords (low watermark 6; a consumer from the beginning
starts at 6, end offset still 10)."""

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewPartitions, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidPartitionsError

import aio_helpers as ah
import compat
from compat import Deadline, fail, passed

DYNAMIC_TOPIC_CONFIG = 1


async def main():
    topic = compat.topic("-ops")
    a = await ah.admin()
    await ah.create_topic(a, topic, 1)
    await ah.wait_partitions(a, topic, 1)
    p = await ah.producer()
    await ah.produce_all(p, topic, [{"key": None, "value": b"v%d" % i, "partition": 0} for i in range(10)])
    await ah.bounded(p.stop(), 30, "producer stop")

    await ah.bounded(a.create_partitions({topic: NewPartitions(3)}), 30, "create_partitions 3")
    await ah.wait_partitions(a, topic, 3)
    try:
        await ah.bounded(a.create_partitions({topic: NewPartitions(2)}), 30, "create_partitions 2")
        fail("shrinking to 2 partitions succeeded")
    except InvalidPartitionsError:
        pass

    resps = await ah.bounded(a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "1000"})]),
                             30, "alter_configs")
    errs = [r for resp in resps for r in resp.to_object()["resources"] if r["error_code"]]
    if errs:
        fail("alter_configs(retention.ms=1000): %s" % errs)
    described = await ah.bounded(a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]), 30, "describe_configs")
    entries = {e["config_names"]: (e["config_value"], e["config_source"])
               for resp in described for res in resp.to_object()["resources"] for e in res["config_entries"]}
    if entries.get("retention.ms") != ("1000", DYNAMIC_TOPIC_CONFIG):
        fail("after alter_configs retention.ms (value, source) is %r, expected ('1000', DYNAMIC_TOPIC_CONFIG=1)" % (entries.get("retention.ms"),))

    tp = TopicPartition(topic, 0)
    low = await ah.bounded(a.delete_records({tp: RecordsToDelete(before_offset=6)}), 30, "delete_records")
    if low != {tp: 6}:
        fail("delete_records low watermarks %r, expected {%s: 6}" % (low, tp))
    await a.close()

    c = AIOKafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest")
    await ah.bounded(c.start(), 30, "consumer start")
    c.assign([tp])
    beg = (await ah.bounded(c.beginning_offsets([tp]), 30, "beginning_offsets"))[tp]
    end = (await ah.bounded(c.end_offsets([tp]), 30, "end_offsets"))[tp]
    await ah.bounded(c.seek_to_beginning(tp), 30, "seek_to_beginning")
    got, dl = [], Deadline(30)
    while len(got) < 4 and not dl.expired():
        got.extend(r.offset for r in (await c.getmany(tp, timeout_ms=500)).get(tp, []))
    await ah.bounded(c.stop(), 30, "consumer stop")
    if (beg, end) != (6, 10) or got != [6, 7, 8, 9]:
        fail("after delete_records: (beginning, end) offsets %s, read from the beginning %s; expected (6, 10) and 6..9" % ((beg, end), got))
    passed("create_partitions 1→3 (shrink refused), alter_configs retention.ms (DYNAMIC_TOPIC_CONFIG), delete_records (offsets 6..10)")


ah.run(main())
