#!/usr/bin/env python3
"""confluent-kafka: KIP-714 client metrics against a broker that advertises
GetTelemetrySubscriptions/PushTelemetry but subscribes no metrics (Kafka's
ClientMetricsManager with no client-metrics resources). librdkafka pushes metrics by
default (enable.metrics.push=true): it must get a client instance id from the broker,
read an empty subscription (no requested metrics, the 5-minute default interval) and
schedule its next GetTelemetrySubscriptions instead of pushing, while a producer and a
consumer work as usual. What the client did is read from its `telemetry` debug log
(librdkafka 2.16's GETSUBSCRIPTIONS/PUSH lines)."""

import logging
import re
import threading

import compat
import ck_helpers as ck
from compat import Deadline, fail, log, passed


class Lines(logging.Handler):
    """Keeps every librdkafka log line (delivered through poll())."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []
        # Not `self.lock`: logging.Handler holds that one while calling emit().
        self.lines_lock = threading.Lock()

    def emit(self, record):
        with self.lines_lock:
            self.lines.append(record.getMessage())

    def grep(self, pattern):
        with self.lines_lock:
            return [line for line in self.lines if re.search(pattern, line)]


def client_logger(name, handler):
    lg = logging.getLogger("rdkafka." + name)
    lg.setLevel(logging.DEBUG)
    lg.propagate = False
    lg.addHandler(handler)
    return lg


def check_telemetry(what, lines):
    """The client got an instance id and an empty subscription, and never pushed."""
    sent = lines.grep(r"GETSUBSCRIPTIONS.*Sending GetTelemetryRequest")
    if not sent:
        fail("%s never sent GetTelemetrySubscriptions (is it advertised?): telemetry log %s"
             % (what, lines.grep("SETBROKER|TELEMETRY|GETSUBSCRIPTIONS")[:5]))
    ids = lines.grep(r"Telemetry client instance id changed from AAAAAAAAAAAAAAAAAAAAAA to ")
    if not ids:
        fail("%s got no client instance id: %s" % (what, lines.grep("GETSUBSCRIPTIONS")[:8]))
    if not lines.grep(r"Parsing: requested metrics count 0"):
        fail("%s: subscription not empty: %s" % (what, lines.grep("GETSUBSCRIPTIONS")[:8]))
    if not lines.grep(r"Parsing: push interval 300000\b"):
        fail("%s: push interval is not Kafka's default 300000 ms: %s" % (what, lines.grep("push interval")))
    handled = lines.grep(r"Handled GetTelemetrySubscriptions.*err = Success, metrics = 0")
    if not handled:
        fail("%s: GetTelemetrySubscriptions not handled as a success: %s"
             % (what, lines.grep("GETSUBSCRIPTIONS")[-3:]))
    pushed = lines.grep(r"PushTelemetry|PUSH")
    if pushed:
        fail("%s pushed metrics although none were requested: %s" % (what, pushed[:3]))
    return ids[0].rsplit(" ", 1)[-1]


topic = compat.topic()
a = ck.create_topic(topic, 1)
ck.wait_partitions(a, topic, 1)

plines = Lines()
p = ck.producer(**{"enable.metrics.push": True, "debug": "telemetry",
                   "logger": client_logger("producer", plines)})
records = [{"key": b"k%d" % i, "value": b"v%d" % i, "partition": 0} for i in range(100)]
reports = ck.produce_all(p, topic, records)
if reports != [(0, i) for i in range(100)]:
    fail("delivery reports %s..., expected offsets 0..99" % reports[:3])
# The first GetTelemetrySubscriptions answer may still be in flight after the records
# are delivered: wait for librdkafka to have handled it (bounded), not a fixed second.
dl = Deadline(30)
while not plines.grep(r"Handled GetTelemetrySubscriptions") and not dl.expired():
    p.poll(0.1)
p.poll(0.2)  # deliver the remaining log lines
producer_id = check_telemetry("producer", plines)
log("producer: client instance id %s, empty subscription, 100 records delivered" % producer_id)

clines = Lines()
got, wm = ck.consume_all(topic, [0], 100, timeout=60, **{
    "enable.metrics.push": True, "debug": "telemetry", "logger": client_logger("consumer", clines)})
seen = [(m.offset(), m.key(), m.value()) for m in got.get(0, [])]
want = [(i, b"k%d" % i, b"v%d" % i) for i in range(100)]
if seen != want:
    fail("read back %s, expected %s" % (seen[:3], want[:3]))
consumer_id = check_telemetry("consumer", clines)
if consumer_id == producer_id:
    fail("producer and consumer got the same client instance id %s" % producer_id)
passed("producer and consumer with enable.metrics.push got instance ids %s, %s and an empty "
       "subscription (no pushes); 100 records produced and read back" % (producer_id, consumer_id))
