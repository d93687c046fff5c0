#!/usr/bin/env python3
"""confluent-kafka's ShareConsumer (KIP-932 share groups, issue 19): queues on a topic.

1. `share.auto.offset.reset=earliest` is set on the group with IncrementalAlterConfigs
   (resource type GROUP, as Kafka's own tests and confluent-kafka's do) and read back.
2. Two share consumers in one group, implicit acknowledgement (the default): together
   they receive every record of a 2-partition topic, none twice (each record is locked
   to one consumer and accepted on its next poll); both are members of the group.
3. A share consumer with explicit acknowledgement in a second group: it RELEASEs one
   record, REJECTs one and ACCEPTs the rest, commits; the released record comes back
   with delivery count 2, the rejected and accepted ones never do.
(confluent-kafka's ListConsumerGroups leaves share groups out, as it does against Kafka:
ListGroups and ShareGroupDescribe are checked by tests/share_groups.rs.)"""

import compat
import ck_helpers as ck
from confluent_kafka import AcknowledgeType, ShareConsumer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from compat import Deadline, fail, log, passed

N = 100
topic = compat.topic()
group = compat.topic("-share")
group2 = compat.topic("-share-explicit")
a = ck.create_topic(topic, 2)
ck.wait_partitions(a, topic, 2)
ck.produce_all(ck.producer(), topic, ({"key": b"k%d" % i, "value": b"v%d" % i, "partition": i % 2} for i in range(N)))

# 1. The group config, set before any member joins.
for g in (group, group2):
    res = ConfigResource(ResourceType.GROUP, g, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
    try:
        a.incremental_alter_configs([res])[res].result(timeout=30)
    except Exception as e:  # noqa: BLE001
        fail("IncrementalAlterConfigs on group %s refused: %r" % (g, e))
res = ConfigResource(ResourceType.GROUP, group)
try:
    described = a.describe_configs([res])[res].result(timeout=30)
except Exception as e:  # noqa: BLE001
    fail("DescribeConfigs on group %s refused: %r" % (group, e))
reset = described.get("share.auto.offset.reset")
if reset is None or reset.value != "earliest":
    fail("share.auto.offset.reset of the group reads back as %r" % (reset and reset.value))
log("share.auto.offset.reset=earliest set on the groups and read back")


def share_consumer(g, **extra):
    cfg = {"bootstrap.servers": compat.bootstrap(), "group.id": g}
    cfg.update(extra)
    c = ShareConsumer(cfg)
    c.subscribe([topic])
    return c


# 2. Two implicit-mode consumers share the topic.
consumers = [share_consumer(group), share_consumer(group)]
got = {}  # value -> consumer index
dupes = []
per = [0, 0]
dl = Deadline(90)
while len(got) < N and not dl.expired():
    for i, c in enumerate(consumers):
        for m in c.poll(timeout=0.5):
            if m.error() is not None:
                log("consumer %d: %s" % (i, m.error()))
                continue
            v = m.value()
            if v in got:
                dupes.append((v, got[v], i, m.delivery_count()))
            got[v] = i
            per[i] += 1
# One more poll each accepts the last records (implicit mode) before the consumers leave.
for c in consumers:
    extra = [m for m in c.poll(timeout=0.5) if m.error() is None]
    if extra:
        fail("records after all %d were received: %s" % (N, [m.value() for m in extra]))
if len(got) < N:
    fail("received %d of %d records (%s per consumer)" % (len(got), N, per))
if dupes:
    fail("records delivered twice: %s" % dupes[:5])
want = {b"v%d" % i for i in range(N)}
if set(got) != want:
    fail("received values differ from those produced: %s" % sorted(set(got) ^ want)[:5])
for c in consumers:
    c.close()
log("two share consumers received all %d records once (%s each)" % (N, per))

# 3. Explicit acknowledgement: release, reject, accept.
c = share_consumer(group2, **{"share.acknowledgement.mode": "explicit"})
first = []
dl = Deadline(60)
while not first and not dl.expired():
    first = [m for m in c.poll(timeout=1) if m.error() is None]
if len(first) < 3:
    fail("the explicit consumer's first poll brought %d records, expected at least 3" % len(first))
released, rejected = first[0], first[1]
c.acknowledge(released, AcknowledgeType.RELEASE)
c.acknowledge(rejected, AcknowledgeType.REJECT)
for m in first[2:]:
    c.acknowledge(m)
results = c.commit_sync(30)
errors = {tp: e for tp, e in (results or {}).items() if e is not None}
if errors:
    fail("commit_sync reported %s" % errors)
seen = {(m.partition(), m.offset()): m.delivery_count() for m in first}
again = None
dl = Deadline(60)
while again is None and not dl.expired():
    for m in c.poll(timeout=1):
        if m.error() is not None:
            continue
        key = (m.partition(), m.offset())
        if key == (released.partition(), released.offset()):
            again = m
        elif key in seen:
            fail("record %s came back after it was %s" % (key, "rejected" if key == (rejected.partition(), rejected.offset()) else "accepted"))
        else:
            seen[key] = m.delivery_count()
        c.acknowledge(m)
    c.commit_sync(30)
if again is None:
    fail("the released record %s was not delivered again" % ((released.partition(), released.offset()),))
if again.delivery_count() != 2:
    fail("the released record came back with delivery count %s, expected 2" % again.delivery_count())
c.close()
log("explicit mode: released record redelivered (delivery count 2); rejected and accepted ones not")

passed("share groups: %d records over 2 implicit consumers once each; release/reject/accept in explicit mode" % N)
