#!/usr/bin/env python3
"""aiokafka AIOKafkaAdminClient over a live group: list_consumer_groups shows it
(protocol type "consumer"), describe_consumer_groups shows it Stable with its one
member (client id, assignment of both partitions), list_consumer_group_offsets
returns the committed offsets. (aiokafka 0.14's admin has no DeleteGroups or
OffsetDelete, so the deletion checks of the other clients are not made.)"""

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.protocol.group import MemberAssignment
from aiokafka.structs import OffsetAndMetadata

import aio_helpers as ah
import compat
from compat import Deadline, fail, passed


async def main():
    topic = compat.topic("-gadmin")
    group = compat.topic("-gadmin-group")
    a = await ah.admin()
    await ah.create_topic(a, topic, 2)
    await ah.wait_partitions(a, topic, 2)
    p = await ah.producer()
    await ah.produce_all(p, topic, [{"key": b"k%d" % i, "value": b"v", "partition": i % 2} for i in range(10)])
    await ah.bounded(p.stop(), 30, "producer stop")

    c = AIOKafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=group, client_id="admin-probe",
                         auto_offset_reset="earliest", enable_auto_commit=False)
    await ah.bounded(c.start(), 30, "consumer start")
    c.subscribe([topic])
    got, dl = 0, Deadline(60)
    while got < 10 and not dl.expired():
        got += sum(len(r) for r in (await c.getmany(timeout_ms=200)).values())
    if got < 10:
        fail("consumed only %d of 10 records" % got)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    await ah.bounded(c.commit({tp0: OffsetAndMetadata(5, ""), tp1: OffsetAndMetadata(5, "")}), 30, "commit")
    # aiokafka heartbeats in a background task: the member stays in the group.

    listed = dict(await ah.bounded(a.list_consumer_groups(), 30, "list_consumer_groups"))
    if listed.get(group) != "consumer":
        fail("list_consumer_groups: %s -> %r (all: %r)" % (group, listed.get(group), listed))
    descs = [g for r in await ah.bounded(a.describe_consumer_groups([group]), 30, "describe_consumer_groups")
             for g in r.to_object()["groups"]]
    if len(descs) != 1:
        fail("describe_consumer_groups returned %r" % descs)
    desc = descs[0]
    members = desc["members"]
    if desc["error_code"] or desc["state"] != "Stable" or desc["protocol_type"] != "consumer" or len(members) != 1 \
            or members[0]["client_id"] != "admin-probe":
        fail("describe_consumer_groups: %r" % desc)
    assignment = MemberAssignment.decode(members[0]["member_assignment"]).assignment
    if [(t, sorted(ps)) for t, ps in assignment] != [(topic, [0, 1])]:
        fail("describe_consumer_groups: member assignment %r" % (assignment,))
    offsets = {tp.partition: om.offset for tp, om in (await ah.bounded(a.list_consumer_group_offsets(group), 30, "offsets")).items()}
    if offsets != {0: 5, 1: 5}:
        fail("list_consumer_group_offsets: %s" % offsets)
    await ah.bounded(c.stop(), 30, "consumer stop")
    await a.close()
    passed("listed (consumer), described (Stable, 1 member %s, protocol %s, partitions [0, 1]), offsets {0: 5, 1: 5}"
           % (members[0]["client_id"], desc["protocol"]))


ah.run(main())
