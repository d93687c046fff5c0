#!/usr/bin/env python3
"""`strom group describe` shows the lag a real consumer left behind: a confluent-kafka
group member reads a 2-partition topic, commits offsets 5 and 12 out of 20 each, and
stays in the group; the CLI (run from STROM_BIN against this broker) must report LAG
15 and 8, CURRENT-OFFSET 5 and 12, LOG-END-OFFSET 20, and the member as the consumer."""

import json
import os
import subprocess

from confluent_kafka import Consumer, TopicPartition

import compat
import ck_helpers as ck
from compat import Deadline, fail, passed

binary = os.environ.get("STROM_BIN")
if not binary:
    compat.unsupported("needs the strom binary (STROM_BIN) for the CLI")
topic = compat.topic("-lag")
group = compat.topic("-lag-group")
a = ck.create_topic(topic, 2)
ck.wait_partitions(a, topic, 2)
ck.produce_all(ck.producer(), topic, [{"key": b"k%d" % i, "value": b"v", "partition": i % 2} for i in range(40)])

c = Consumer({"bootstrap.servers": compat.bootstrap(), "group.id": group, "client.id": "lag-probe",
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
seen, dl = 0, Deadline(60)
while seen < 40 and not dl.expired():
    m = c.poll(0.2)
    if m is not None and not m.error():
        seen += 1
if seen < 40:
    fail("consumed %d of 40" % seen)
c.commit(offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 12)], asynchronous=False)

out = subprocess.run([binary, "group", "describe", group, "-b", compat.bootstrap(), "-o", "json"],
                     capture_output=True, text=True, timeout=60)
c.close()
if out.returncode != 0:
    fail("strom group describe failed: %s" % out.stderr)
rows = {r["partition"]: r for r in json.loads(out.stdout) if r.get("topic") == topic}
want = {0: (5, 20, 15), 1: (12, 20, 8)}
for p, (cur, end, lag) in want.items():
    r = rows.get(p)
    if r is None or (r["current_offset"], r["log_end_offset"], r["lag"]) != (cur, end, lag):
        fail("partition %d: CLI says %r, expected current %d, end %d, lag %d" % (p, r, cur, end, lag))
    if r["client_id"] != "lag-probe":
        fail("partition %d: consumer column %r, expected client id lag-probe" % (p, r))
passed("strom group describe: LAG 15 and 8 as the confluent-kafka member left them, member shown")
