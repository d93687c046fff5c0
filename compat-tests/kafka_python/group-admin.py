#!/usr/bin/env python3
"""kafka-python KafkaAdminClient over a live group: list (state and type) and
describe it, list its committed offsets, refuse DeleteGroups (NON_EMPTY_GROUP) and
OffsetDelete (GROUP_SUBSCRIBED_TO_TOPIC) while a member consumes, then delete one
partition's offset and the group once the member left."""

import threading

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

import compat
import kp_helpers as kp
from compat import Deadline, fail, passed

topic = compat.topic("-gadmin")
group = compat.topic("-gadmin-group")
a = kp.create_topic(topic, 2)
kp.wait_partitions(topic, 2, admin_client=a)
p = kp.producer()
for i in range(10):
    p.send(topic, key=b"k%d" % i, value=b"v", partition=i % 2)
p.flush(timeout=30)

c = KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=group, client_id="admin-probe",
                  auto_offset_reset="earliest", enable_auto_commit=False)
c.subscribe([topic])
got, dl = 0, Deadline(60)
while got < 10 and not dl.expired():
    got += sum(len(r) for r in c.poll(timeout_ms=200).values())
if got < 10:
    fail("consumed only %d of 10 records" % got)
tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
c.commit({tp0: OffsetAndMetadata(5, "", -1), tp1: OffsetAndMetadata(5, "", -1)})
# Keep heartbeating in the background while the admin client looks at the group.
stop = threading.Event()


def keep_alive():
    while not stop.is_set():
        c.poll(timeout_ms=100)


t = threading.Thread(target=keep_alive, daemon=True)
t.start()

listed = {g["group_id"]: g for g in a.list_groups()}
if listed.get(group, {}).get("group_state") != "Stable" or listed[group].get("group_type") != "classic":
    fail("list_groups: %r" % listed.get(group))
desc = a.describe_groups([group])[group]
members = desc["members"]
if desc["group_state"] != "Stable" or len(members) != 1 or members[0]["client_id"] != "admin-probe":
    fail("describe_groups: %r" % desc)
assigned = members[0]["member_assignment"]["assigned_partitions"]
if assigned != [{"topic": topic, "partitions": [0, 1]}]:
    fail("describe_groups: member assignment %r" % assigned)
offsets = {tp.partition: om.offset for tp, om in a.list_group_offsets({group: None})[group].items()}
if offsets != {0: 5, 1: 5}:
    fail("list_group_offsets: %s" % offsets)
if a.delete_groups([group]).get(group) != "NonEmptyGroupError":
    fail("deleting a live group: %r" % a.delete_groups([group]))
live = a.delete_group_offsets(group, [tp0])
if getattr(live.get(tp0), "__name__", "") != "GroupSubscribedToTopicError":
    fail("OffsetDelete on a subscribed topic: %r" % live)
stop.set()
t.join(timeout=30)
c.close(autocommit=False)
done = a.delete_group_offsets(group, [tp0])
if getattr(done.get(tp0), "__name__", "") != "NoError":
    fail("OffsetDelete after the member left: %r" % done)
left = {tp.partition for tp in a.list_group_offsets({group: None})[group]}
if left != {1}:
    fail("after OffsetDelete of partition 0 the group still has offsets for %s" % sorted(left))
if a.delete_groups([group]).get(group) != "OK":
    fail("deleting the empty group failed")
if group in {g["group_id"] for g in a.list_groups()}:
    fail("deleted group is still listed")
passed("listed (Stable, classic), described, offsets {0: 5, 1: 5}; NON_EMPTY_GROUP and GROUP_SUBSCRIBED_TO_TOPIC while live; OffsetDelete and DeleteGroups after")
