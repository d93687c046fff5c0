#!/usr/bin/env python3
"""Setup helper for the kcat scenarios, run with the venv python
(compat-tests/.venv/bin/python): kcat has no admin API and cannot set per-message
timestamps, so topic creation (partitions, configs) and the seek-timestamp records
are done here with confluent-kafka. What the scenarios check is kcat itself.

  kcat_admin.py create TOPIC PARTITIONS [name=value ...]   CreateTopics, wait for leaders
  kcat_admin.py produce-timestamps TOPIC T0                the seek-timestamp records
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "confluent_kafka"))
import compat  # noqa: E402
import ck_helpers as ck  # noqa: E402


def create(topic, partitions, configs):
    cfg = dict(c.split("=", 1) for c in configs)
    a = ck.create_topic(topic, partitions, config=cfg)
    ck.wait_partitions(a, topic, partitions)
    print("created %s with %d partition(s)%s" % (topic, partitions, " and %s" % cfg if cfg else ""))


def produce_timestamps(topic, t0):
    data = compat.timestamp_dataset(t0)
    reports = ck.produce_all(ck.producer(), topic, ({"key": k, "value": v, "ts": ts, "partition": 0} for k, v, ts in data))
    if reports != [(0, i) for i in range(len(data))]:
        compat.fail("timestamped records landed at %s, expected partition 0 offsets 0..%d" % (reports[:5], len(data) - 1))
    print("produced %d records with CreateTime T0 + 1000*i (T0 = %d) to %s" % (len(data), t0, topic))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "create":
        create(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    elif cmd == "produce-timestamps":
        produce_timestamps(sys.argv[2], int(sys.argv[3]))
    else:
        print(__doc__)
        sys.exit(2)
    sys.stdout.flush()
    os._exit(0)  # never hang in librdkafka shutdown
