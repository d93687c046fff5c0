"""An idempotent producer survives three broker restarts with no loss, duplicate or reordering.

confluent-kafka (librdkafka) with enable.idempotence=true, acks=all and 5
requests in flight writes COMPAT_IDEMPOTENT_RECORDS records (default
1,000,000) round-robin over 3 partitions of its own broker, started from
STROM_BIN on a free port with a fresh data directory. While it writes, the
broker is stopped and started again three times: once with SIGTERM (clean
shutdown: producer-state snapshot) and twice with SIGKILL (no snapshot:
state rebuilt from the log). Retries of batches the broker had already
appended must be answered with their original offsets (ADR 0003).

Pass: every delivery report is a success, and each partition holds exactly
its records, each once, in send order.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import compat
from compat import Deadline, fail, log

TOTAL = int(os.environ.get("COMPAT_IDEMPOTENT_RECORDS", "1000000"))
PARTITIONS = 3
RESTARTS = [(0.25, signal.SIGTERM), (0.5, signal.SIGKILL), (0.75, signal.SIGKILL)]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    def __init__(self, binary, workdir):
        self.binary, self.port = binary, free_port()
        self.data = os.path.join(workdir, "data")
        self.logf = open(os.path.join(workdir, "strom.log"), "ab")
        self.proc = None

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listeners", "PLAINTEXT://" + self.bootstrap, "--log-dirs", self.data,
             "--override", "strom.http.listener=127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT)
        dl = Deadline(30)
        while not dl.expired():
            if self.proc.poll() is not None:
                fail("broker exited with %s on start" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        fail("broker did not start listening")

    def stop(self, sig):
        self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def value(i):
    return b"%d" % i


def main():
    binary = os.environ.get("STROM_BIN")
    if not binary:
        compat.unsupported("needs STROM_BIN (run through compat-tests/run, which starts strom itself)")
    workdir = tempfile.mkdtemp(prefix="strom-idem-")
    broker = Broker(binary, workdir)
    broker.start()
    topic = compat.topic()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)

    p = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "max.in.flight.requests.per.connection": 5,
        "linger.ms": 10,
        "message.timeout.ms": 300000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "retry.backoff.ms": 50,
        "queue.buffering.max.messages": 200000,
    })
    delivered = [0]
    errors = []

    def on_delivery(err, msg):
        if err:
            errors.append("%s (partition %s)" % (err, msg.partition()))
        else:
            delivered[0] += 1

    def restarter():
        for frac, sig in RESTARTS:
            while delivered[0] < frac * TOTAL and not errors:
                time.sleep(0.01)
            if errors:
                return
            log("at %d delivered: stopping the broker with %s" % (delivered[0], signal.Signals(sig).name))
            broker.stop(sig)
            time.sleep(0.3)
            broker.start()
            log("broker restarted")

    t0 = time.monotonic()
    restarts = threading.Thread(target=restarter, daemon=True)
    restarts.start()
    for i in range(TOTAL):
        while True:
            try:
                p.produce(topic, value=value(i), partition=i % PARTITIONS, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
            if errors:
                fail("delivery failed: %s" % errors[:3])
    left = p.flush(300)
    restarts.join(60)
    produce_secs = time.monotonic() - t0
    if left or errors:
        fail("%d undelivered, %d errors: %s" % (left, len(errors), errors[:3]))
    if delivered[0] != TOTAL:
        fail("%d delivery reports for %d records" % (delivered[0], TOTAL))
    log("produced %d records in %.1fs across 3 restarts" % (TOTAL, produce_secs))

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "compat-unused", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800})
    for part in range(PARTITIONS):
        want = (TOTAL - part + PARTITIONS - 1) // PARTITIONS
        c.assign([TopicPartition(topic, part, OFFSET_BEGINNING)])
        n, dl = 0, Deadline(180)
        while n < want and not dl.expired():
            for m in c.consume(10000, 1.0):
                if m.error():
                    fail("consume: %s" % m.error())
                expect = value(part + n * PARTITIONS)
                if m.offset() != n or m.value() != expect:
                    fail("partition %d offset %d: got %r, want offset %d value %r (duplicate or reordering)" % (
                        part, m.offset(), m.value(), n, expect))
                n += 1
        if n != want:
            fail("partition %d: %d records, want %d" % (part, n, want))
        low, high = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
        if high != want:
            fail("partition %d: high watermark %d, want %d (extra records)" % (part, high, want))
    c.close()
    broker.stop(signal.SIGTERM)
    shutil.rmtree(workdir, ignore_errors=True)
    compat.passed("%d records, 3 restarts (1 SIGTERM, 2 SIGKILL), exactly once and in order per partition; "
                  "produce took %.1fs, total %.1fs" % (TOTAL, produce_secs, time.monotonic() - t0))


main()
