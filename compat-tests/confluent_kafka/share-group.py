#!/usr/bin/env python3
"""confluent-kafka's ShareConsumer (KIP-932 share groups, issue 19): queues on a topic.

1. `share.auto.offset.reset=earliest` is set on the groups with IncrementalAlterConfigs
   (resource type GROUP, as Kafka's own tests and confluent-kafka's do) and read back.
2. Four share consumers, implicit acknowledgement (the default), on a 2-partition topic
   (more consumers than partitions): each receives records, together they receive every
   record, none twice (each record is locked to one consumer and accepted on its next poll).
3. Explicit acknowledgement: RELEASE redelivers (delivery count 2), REJECT and ACCEPT are
   final.
4. A consumer killed while holding records (its process exits without closing): another
   consumer of the group gets them, with delivery count 2.
5. The delivery limit: a poison record released on every delivery is archived after
   `group.share.delivery.count.limit` (5) deliveries; a record produced after it arrives
   without it.
(confluent-kafka's ListConsumerGroups leaves share groups out, as it does against Kafka:
ListGroups and ShareGroupDescribe are checked by tests/share_groups.rs and tests/cli.rs.)"""

import subprocess
import sys

import compat
import ck_helpers as ck
from confluent_kafka import AcknowledgeType, ShareConsumer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from compat import Deadline, fail, log, passed

N = 2000
topic = compat.topic()
groups = {name: compat.topic("-" + name) for name in ("four", "explicit", "killed", "poison")}
a = ck.create_topic(topic, 2)
ck.wait_partitions(a, topic, 2)

# 1. Group configs, set before any member joins. Heartbeats every second, so that the
#    four members settle on their assignment quickly.
for g in groups.values():
    res = ConfigResource(ResourceType.GROUP, g, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("share.heartbeat.interval.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    try:
        a.incremental_alter_configs([res])[res].result(timeout=30)
    except Exception as e:  # noqa: BLE001
        fail("IncrementalAlterConfigs on group %s refused: %r" % (g, e))
# The killed consumer stays a member (assigned its partitions) until its session times
# out; its records go back when its connection closes, but the survivor fetches the dead
# member's partitions only once it is assigned them. 5 s instead of 45 s keeps it short.
res = ConfigResource(ResourceType.GROUP, groups["killed"], incremental_configs=[
    ConfigEntry("share.session.timeout.ms", "5000", incremental_operation=AlterConfigOpType.SET)])
a.incremental_alter_configs([res])[res].result(timeout=30)
res = ConfigResource(ResourceType.GROUP, groups["four"])
try:
    described = a.describe_configs([res])[res].result(timeout=30)
except Exception as e:  # noqa: BLE001
    fail("DescribeConfigs on group %s refused: %r" % (groups["four"], e))
reset = described.get("share.auto.offset.reset")
if reset is None or reset.value != "earliest":
    fail("share.auto.offset.reset of the group reads back as %r" % (reset and reset.value))
log("share.auto.offset.reset=earliest set on the groups and read back")


def share_consumer(g, subscribe=topic, **extra):
    cfg = {"bootstrap.servers": compat.bootstrap(), "group.id": g}
    cfg.update(extra)
    c = ShareConsumer(cfg)
    c.subscribe([subscribe])
    return c


def records(c, timeout=0.5):
    return [m for m in c.poll(timeout=timeout) if m.error() is None]


# 2. Four implicit-mode consumers join first (each polls until the group has settled),
#    then the records arrive in small batches, so that consumers sharing a partition
#    each get some.
# Up to 100 records per fetch (max.poll.records), so that consumers sharing a partition
# take turns rather than one taking a partition's backlog at once.
consumers = [share_consumer(groups["four"], **{"max.poll.records": 100}) for _ in range(4)]
# The client exposes no assignment: poll for a few heartbeat intervals (bounded).
dl = Deadline(4)
while not dl.expired():
    for c in consumers:
        if records(c, 0.2):
            fail("records before any were produced")
ck.produce_all(ck.producer(**{"linger.ms": 0, "batch.num.messages": 20}), topic,
               ({"key": b"k%d" % i, "value": b"v%d" % i, "partition": i % 2} for i in range(N)))
got = {}  # value -> consumer index
dupes = []
per = [0, 0, 0, 0]
dl = Deadline(90)
while len(got) < N and not dl.expired():
    for i, c in enumerate(consumers):
        for m in records(c):
            v = m.value()
            if v in got:
                dupes.append((v, got[v], i, m.delivery_count()))
            got[v] = i
            per[i] += 1
# One more poll each accepts the last records (implicit mode) before the consumers leave.
for c in consumers:
    extra = records(c)
    if extra:
        fail("records after all %d were received: %s" % (N, [m.value() for m in extra][:5]))
if len(got) < N:
    fail("received %d of %d records (%s per consumer)" % (len(got), N, per))
if dupes:
    fail("records delivered twice: %s" % dupes[:5])
if set(got) != {b"v%d" % i for i in range(N)}:
    fail("received values differ from those produced")
if min(per) == 0:
    fail("a consumer received nothing: %s per consumer" % per)
for c in consumers:
    c.close()
log("four share consumers on two partitions received all %d records once (%s each)" % (N, per))

# 3. Explicit acknowledgement: release, reject, accept.
c = share_consumer(groups["explicit"], **{"share.acknowledgement.mode": "explicit"})
first = []
dl = Deadline(60)
while not first and not dl.expired():
    first = records(c, 1)
if len(first) < 3:
    fail("the explicit consumer's first poll brought %d records, expected at least 3" % len(first))
released, rejected = first[0], first[1]
c.acknowledge(released, AcknowledgeType.RELEASE)
c.acknowledge(rejected, AcknowledgeType.REJECT)
for m in first[2:]:
    c.acknowledge(m)
errors = {tp: e for tp, e in (c.commit_sync(30) or {}).items() if e is not None}
if errors:
    fail("commit_sync reported %s" % errors)
seen = {(m.partition(), m.offset()) for m in first}
again = None
dl = Deadline(60)
while again is None and not dl.expired():
    for m in records(c, 1):
        key = (m.partition(), m.offset())
        if key == (released.partition(), released.offset()):
            again = m
        elif key in seen:
            fail("record %s came back after it was %s" % (key, "rejected" if key == (rejected.partition(), rejected.offset()) else "accepted"))
        seen.add(key)
        c.acknowledge(m)
    c.commit_sync(30)
if again is None:
    fail("the released record %s was not delivered again" % ((released.partition(), released.offset()),))
if again.delivery_count() != 2:
    fail("the released record came back with delivery count %s, expected 2" % again.delivery_count())
c.close()
log("explicit mode: released record redelivered (delivery count 2); rejected and accepted ones not")

# 4. A consumer process that dies holding records: they go to another consumer.
child = r"""
import sys
from confluent_kafka import ShareConsumer
c = ShareConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "share.acknowledgement.mode": "explicit"})
c.subscribe([sys.argv[3]])
for _ in range(120):
    got = [m for m in c.poll(timeout=0.5) if m.error() is None]
    if got:
        print(" ".join("%d:%d" % (m.partition(), m.offset()) for m in got), flush=True)
        import os
        os._exit(0)  # killed: no acknowledgement, no close
sys.exit(3)
"""
out = subprocess.run([sys.executable, "-c", child, compat.bootstrap(), groups["killed"], topic],
                     capture_output=True, text=True, timeout=120)
if out.returncode != 0:
    fail("the consumer to kill got nothing (exit %d): %s" % (out.returncode, out.stderr[-500:]))
held = {tuple(int(x) for x in pair.split(":")) for pair in out.stdout.split()}
c = share_consumer(groups["killed"], **{"share.acknowledgement.mode": "explicit"})
back = {}
dl = Deadline(90)
while len(back) < len(held) and not dl.expired():
    for m in records(c, 1):
        key = (m.partition(), m.offset())
        if key in held:
            back[key] = m.delivery_count()
        c.acknowledge(m)
    c.commit_sync(30)
c.close()
if set(back) != held:
    fail("%d of the %d records the killed consumer held came back" % (len(back), len(held)))
if set(back.values()) != {2}:
    fail("redelivered with delivery counts %s, expected 2" % sorted(set(back.values())))
log("killed consumer: its %d records went to another consumer (delivery count 2)" % len(held))

# 5. The delivery limit archives a poison record.
ptopic = topic + "-poison"
ck.create_topic(ptopic, 1)
ck.wait_partitions(a, ptopic, 1)
ck.produce_all(ck.producer(), ptopic, [{"key": b"p", "value": b"poison", "partition": 0}])
c = share_consumer(groups["poison"], subscribe=ptopic, **{"share.acknowledgement.mode": "explicit"})
counts = []
dl = Deadline(90)
while len(counts) < 5 and not dl.expired():
    for m in records(c, 1):
        counts.append(m.delivery_count())
        c.acknowledge(m, AcknowledgeType.RELEASE)
    c.commit_sync(30)
if counts != [1, 2, 3, 4, 5]:
    fail("the poison record's deliveries had counts %s, expected 1..5" % counts)
ck.produce_all(ck.producer(), ptopic, [{"key": b"s", "value": b"sentinel", "partition": 0}])
after = []
dl = Deadline(60)
while b"sentinel" not in after and not dl.expired():
    for m in records(c, 1):
        after.append(m.value())
        c.acknowledge(m)
    c.commit_sync(30)
c.close()
if after != [b"sentinel"]:
    fail("after the delivery limit the consumer got %s, expected only the sentinel" % after)
log("poison record archived after 5 deliveries; the next record arrived without it")
passed("share groups: %d records over 4 consumers on 2 partitions once each (%s); release/reject/accept; "
       "a killed consumer's records redelivered; poison archived after 5 deliveries" % (N, per))
