#!/usr/bin/env python3
"""confluent-kafka: 3 x 900 KB records in each of 2 partitions, consumed together with
fetch.max.bytes=1000000 and receive.message.max.bytes=1000512 (librdkafka refuses a
larger response and reconnects). KIP-74: only the first partition of a response may go
past fetch.max.bytes, so every response stays within what librdkafka accepts: no client
error, and all 6 records arrive, byte for byte."""

import compat
import ck_helpers as ck
from compat import fail, log, passed

VALUE = 900_000
topic = compat.topic()
a = ck.create_topic(topic, 2, config={"max.message.bytes": "4194304"})
ck.wait_partitions(a, topic, 2)
data = [(b"k%d-%d" % (p, i), bytes([65 + 3 * p + i]) * VALUE, p) for p in range(2) for i in range(3)]
pr = ck.producer(**{"linger.ms": 0})
ck.produce_all(pr, topic, ({"key": k, "value": v, "partition": p} for k, v, p in data))
log("produced %d x %d bytes over 2 partitions" % (len(data), VALUE))

# A response over the limit is a "Receive failed: Invalid response size" error, after
# which librdkafka reconnects and fetches one partition at a time: the records would
# still arrive, so the errors themselves are what this cell counts.
errors = []
got, wm = ck.consume_all(topic, [0, 1], len(data), timeout=90,
                         **{"fetch.max.bytes": 1_000_000, "receive.message.max.bytes": 1_000_512,
                            "error_cb": lambda err: errors.append(str(err))})
if errors:
    fail("%d client error(s) while consuming, first: %s" % (len(errors), errors[0]))
for p in range(2):
    want = [(i, k, v) for i, (k, v, _) in enumerate(d for d in data if d[2] == p)]
    seen = [(m.offset(), m.key(), m.value()) for m in got.get(p, [])]
    if seen != want:
        fail("partition %d: got %d records (offsets %s), expected 3 at offsets 0..2 with their values"
             % (p, len(seen), [s[0] for s in seen]))
passed("6 x 900 KB records over 2 partitions with fetch.max.bytes=1000000")
