#!/usr/bin/env python3
"""confluent-kafka AdminClient over a live group (classic, or KIP-848 with
GROUP_PROTOCOL=consumer): list groups (with a state filter), describe the group
(member, client id, assignment), list its committed offsets, refuse to delete it
while it has a member, and delete it once the member left."""

import os

from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaException, TopicPartition

import compat
import ck_helpers as ck
from compat import Deadline, fail, log, passed

PROTOCOL = os.environ.get("GROUP_PROTOCOL", "classic")
topic = compat.topic("-gadmin")
group = compat.topic("-gadmin-group")
ck.create_topic(topic, 2)
a = ck.admin()
ck.wait_partitions(a, topic, 2)
ck.produce_all(ck.producer(), topic, [{"key": b"k%d" % i, "value": b"v", "partition": i % 2} for i in range(10)])

c = Consumer({"bootstrap.servers": compat.bootstrap(), "group.id": group, "group.protocol": PROTOCOL,
              "client.id": "admin-probe", "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
got = 0
dl = Deadline(60)
while got < 10 and not dl.expired():
    m = c.poll(0.2)
    if m is not None and not m.error():
        got += 1
if got < 10:
    fail("consumed only %d of 10 records" % got)
c.commit(asynchronous=False)

listed = a.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(timeout=30)
ids = {g.group_id: g for g in listed.valid}
if group not in ids:
    fail("list_consumer_groups(STABLE) does not show %s: %s" % (group, sorted(ids)))

desc = a.describe_consumer_groups([group])[group].result(timeout=30)
if len(desc.members) != 1 or desc.members[0].client_id != "admin-probe":
    fail("describe: expected one member 'admin-probe', got %r" % (desc.members,))
parts = sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions)
if parts != [0, 1]:
    fail("describe: member assignment %s, expected [0, 1]" % parts)
log("described: state %s, assignor %r, member %s" % (desc.state, desc.partition_assignor, desc.members[0].member_id))

res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])])
offsets = {tp.partition: tp.offset for tp in res[group].result(timeout=30).topic_partitions}
if offsets != {0: 5, 1: 5}:
    fail("list_consumer_group_offsets: %s, expected {0: 5, 1: 5}" % offsets)

try:
    a.delete_consumer_groups([group])[group].result(timeout=30)
    fail("deleting a group with a live member succeeded")
except KafkaException as e:
    if e.args[0].code() != 68:  # NON_EMPTY_GROUP
        fail("delete of a live group gave %s, expected NON_EMPTY_GROUP" % e.args[0])
c.close()
a.delete_consumer_groups([group])[group].result(timeout=30)
after = {g.group_id for g in a.list_consumer_groups().result(timeout=30).valid}
if group in after:
    fail("deleted group %s is still listed" % group)
passed("%s group listed, described (%s), offsets {0: 5, 1: 5}, delete refused while live then done" % (PROTOCOL, desc.state))
