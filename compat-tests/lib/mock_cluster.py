#!/usr/bin/env python3
"""Dev aid: serve librdkafka's built-in *mock* Kafka cluster on 127.0.0.1.

Run with the venv python (needs confluent-kafka):
    compat-tests/.venv/bin/python compat-tests/lib/mock_cluster.py
It prints `BOOTSTRAP host:port` and serves until SIGTERM/SIGINT. Point the
runner at it to smoke-test the harness itself without a real broker:
    compat-tests/run --bootstrap HOST:PORT
The mock is NOT a faithful Kafka (e.g. it may not implement CreateTopics and
auto-creates topics with its own default partition count), so scenario
failures against it say little about Strom; it only proves the harness runs.
"""

import signal
import sys
import time

from confluent_kafka import Producer

stop = False


def _stop(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)

p = Producer({"bootstrap.servers": "unused:9092", "test.mock.num.brokers": 1})
md = p.list_topics(timeout=10)
b = next(iter(md.brokers.values()))
print("BOOTSTRAP %s:%d" % (b.host, b.port), flush=True)
while not stop:
    p.poll(0.2)
    time.sleep(0.2)
sys.exit(0)
