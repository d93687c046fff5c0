#!/usr/bin/env python3
"""kafka-python: 3 x 900 KB records in each of 2 partitions, consumed together with
fetch_max_bytes=1000000 (KIP-74: only the first partition of a response may go past
it, unless it is the first partition's first batch); no response carries more than
1,000,000 record bytes (kafka-python's fetch-size-max metric), and all 6 records
arrive, byte for byte, in order per partition."""

import compat
import kp_helpers as kp
from kafka import KafkaConsumer, TopicPartition
from compat import Deadline, fail, log, passed

VALUE = 900_000
topic = compat.topic()
a = kp.create_topic(topic, 2, topic_configs={"max.message.bytes": "4194304"})
kp.wait_partitions(topic, 2, admin_client=a)
data = [(b"k%d-%d" % (p, i), bytes([65 + 3 * p + i]) * VALUE, p) for p in range(2) for i in range(3)]
pr = kp.producer(max_request_size=4194304)
kp.produce_all(pr, topic, ({"key": k, "value": v, "partition": p} for k, v, p in data))
pr.close(timeout=10)
log("produced %d x %d bytes over 2 partitions" % (len(data), VALUE))

c = KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=None, enable_auto_commit=False,
                  auto_offset_reset="earliest", fetch_max_bytes=1_000_000)
tps = [TopicPartition(topic, p) for p in range(2)]
c.assign(tps)
c.seek_to_beginning(*tps)
got = {0: [], 1: []}
dl = Deadline(90)
while sum(len(v) for v in got.values()) < len(data) and not dl.expired():
    for tp, recs in c.poll(timeout_ms=500).items():
        got[tp.partition].extend(recs)
# kafka-python's own measure of the record bytes in each fetch response.
biggest = c.metrics().get("consumer-fetch-manager-metrics", {}).get("fetch-size-max")
c.close(autocommit=False)
if biggest is None or biggest > 1_000_000:
    fail("largest fetch response carried %s record bytes; fetch_max_bytes was 1000000" % biggest)
log("largest fetch response: %d record bytes" % biggest)
for p in range(2):
    want = [(i, k, v) for i, (k, v, _) in enumerate(d for d in data if d[2] == p)]
    seen = [(r.offset, r.key, r.value) for r in got[p]]
    if seen != want:
        fail("partition %d: got %d records (offsets %s), expected 3 at offsets 0..2 with their values"
             % (p, len(seen), [s[0] for s in seen]))
passed("6 x 900 KB records over 2 partitions with fetch_max_bytes=1000000")
