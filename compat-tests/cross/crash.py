"""Crash test: kill -9 at random moments under an idempotent acks=all producer.

The broker runs with log.flush.interval.messages=1 (fsync before every
acknowledgement, group commit). confluent-kafka (enable.idempotence, acks=all,
5 in flight) writes numbered records over 3 partitions while the broker is
SIGKILLed at random moments and restarted, COMPAT_CRASH_ROUNDS times (default
10; e.g. COMPAT_CRASH_ROUNDS=200 for a long run). Afterwards every partition
is read back with CRC checking on, and the test checks and prints:
0 acknowledged records lost, 0 duplicates, offsets contiguous per partition.
Records sent but never acknowledged may or may not be there.
"""

import os
import random
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import compat
from broker import OwnBroker
from compat import Deadline, fail, log

ROUNDS = int(os.environ.get("COMPAT_CRASH_ROUNDS", "10"))
PARTITIONS = 3
rng = random.Random(int(os.environ.get("COMPAT_CRASH_SEED", str(int(time.time())))))

own = OwnBroker(["--override", "log.flush.interval.messages=1"]).start()
topic = compat.topic("-crash")
try:
    admin = AdminClient({"bootstrap.servers": own.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=30)
    acked, errors, stop = set(), [], threading.Event()
    lock = threading.Lock()

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
            return
        with lock:
            acked.add(int(msg.value()))

    p = Producer({"bootstrap.servers": own.bootstrap, "enable.idempotence": True, "acks": "all",
                  "max.in.flight.requests.per.connection": 5, "linger.ms": 2,
                  "message.timeout.ms": 300000, "reconnect.backoff.max.ms": 200})
    sent = 0

    def produce():
        global sent
        while not stop.is_set():
            try:
                p.produce(topic, value=str(sent).encode(), partition=sent % PARTITIONS, on_delivery=on_delivery)
                sent += 1
            except BufferError:
                p.poll(0.05)
                continue
            if sent % 200 == 0:
                p.poll(0)
                time.sleep(0.002)

    writer = threading.Thread(target=produce, daemon=True)
    writer.start()
    for r in range(ROUNDS):
        time.sleep(rng.uniform(0.2, 1.2))
        with lock:
            so_far = len(acked)
        log("round %d: kill -9 after %d acknowledged" % (r + 1, so_far))
        own.restart(kill=True)
    time.sleep(0.5)
    stop.set()
    writer.join(timeout=30)
    remaining = p.flush(120)
    if remaining:
        fail("%d records still undelivered after the last restart" % remaining)
    if errors:
        fail("%d delivery errors, first: %s" % (len(errors), errors[0]))

    # One more unclean restart with everything acknowledged, then read it all back.
    own.restart(kill=True)
    c = Consumer({"bootstrap.servers": own.bootstrap, "group.id": "crash-reader", "enable.auto.commit": False,
                  "check.crcs": True, "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(PARTITIONS)])
    seen, offsets, eof = {}, {i: [] for i in range(PARTITIONS)}, set()
    dl = Deadline(300)
    while len(eof) < PARTITIONS and not dl.expired():
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            fail("consumer error (CRC or other): %s" % m.error())
        n = int(m.value())
        seen[n] = seen.get(n, 0) + 1
        offsets[m.partition()].append(m.offset())
    c.close()
    lost = sorted(acked - set(seen))
    dups = sorted(n for n, k in seen.items() if k > 1)
    gaps = [i for i, offs in offsets.items() if offs != list(range(len(offs)))]
    log("crash test: %d rounds, %d sent, %d acknowledged, %d stored, %d lost, %d duplicates, gaps in %s" % (
        ROUNDS, sent, len(acked), len(seen), len(lost), len(dups), gaps or "no partition"))
    if lost:
        fail("%d acknowledged records lost, e.g. %s" % (len(lost), lost[:5]))
    if dups:
        fail("%d records stored twice, e.g. %s" % (len(dups), dups[:5]))
    if gaps:
        fail("offsets not contiguous in partitions %s" % gaps)
    compat.passed("%d kill -9 rounds: %d acknowledged, 0 lost, 0 duplicates, offsets contiguous, CRCs checked" % (ROUNDS, len(acked)))
finally:
    own.close()
