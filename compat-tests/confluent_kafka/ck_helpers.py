"""confluent-kafka (librdkafka) helpers shared by the scenarios in this dir.

Consumers never join a consumer group: Strom has no group coordinator yet.
confluent-kafka's Consumer() refuses to start without `group.id`
("Failed to create consumer: group.id must be set"), so a dummy group.id is
set, but only assign() is used and nothing is ever committed. librdkafka may
log FindCoordinator/coordinator errors for that dummy group; that is fine as
long as consumption works.
"""

import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

import compat
from compat import Deadline, fail, log

__all__ = ["TIMESTAMP_CREATE_TIME", "KafkaException"]


def producer(**extra):
    cfg = {"bootstrap.servers": compat.bootstrap(), "linger.ms": 5}
    cfg.update(extra)
    return Producer(cfg)


def admin():
    return AdminClient({"bootstrap.servers": compat.bootstrap()})


def produce_all(p, topic, records, timeout=120):
    """records: iterable of dicts with key, value and optional headers, ts,
    partition. Returns the delivery reports as a list of (partition, offset)
    in produce order; fails the scenario on any delivery error."""
    records = list(records)
    reports = [None] * len(records)
    errors = []

    def make_cb(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                reports[i] = (msg.partition(), msg.offset())
        return cb

    dl = Deadline(timeout)
    for i, r in enumerate(records):
        kw = {"key": r["key"], "value": r["value"], "on_delivery": make_cb(i)}
        if r.get("headers") is not None:
            kw["headers"] = r["headers"]
        if r.get("ts") is not None:
            kw["timestamp"] = r["ts"]
        if r.get("partition") is not None:
            kw["partition"] = r["partition"]
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                if dl.expired():
                    fail("producer queue stayed full; timed out at message %d" % i)
                p.poll(0.05)
        p.poll(0)
        if errors:
            break
    remaining = p.flush(max(1.0, dl.left()))
    if errors:
        i, err = errors[0]
        fail("delivery failed for %d message(s); first: index %d: %s" % (len(errors), i, err))
    if remaining:
        fail("%d message(s) still undelivered after flush timeout" % remaining)
    missing = [i for i, r in enumerate(reports) if r is None]
    if missing:
        fail("no delivery report for %d message(s), first index %d" % (len(missing), missing[0]))
    return reports


def consumer(**extra):
    cfg = {
        "bootstrap.servers": compat.bootstrap(),
        # Required by confluent-kafka even for assign()-only use; never joined.
        "group.id": "strom-compat-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    cfg.update(extra)
    return Consumer(cfg)


def consume_all(topic, partitions, expected_total, timeout=120, start=OFFSET_BEGINNING, **consumer_config):
    """Consume `partitions` of `topic` from `start` (default: the beginning; assign,
    no group) until `expected_total` messages arrived and every partition reported
    EOF (so extra messages are noticed), or the timeout. Returns
    ({partition: [Message]}, {partition: (low, high) watermarks})."""
    c = consumer(**consumer_config)
    c.assign([TopicPartition(topic, p, start) for p in partitions])
    got = {p: [] for p in partitions}
    eof = set()
    total = 0
    dl = Deadline(timeout)
    last_err = None
    while not dl.expired():
        msgs = c.consume(num_messages=1000, timeout=0.5)
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                if err.fatal():
                    fail("fatal consumer error: %s" % err)
                if str(err) != last_err:
                    log("consumer error (non-fatal, continuing): %s" % err)
                    last_err = str(err)
                continue
            got.setdefault(m.partition(), []).append(m)
            eof.discard(m.partition())
            total += 1
        if total >= expected_total and eof >= set(partitions):
            break
    else:
        log("consume timed out after %ds with %d/%d messages, EOF on %s" % (
            timeout, total, expected_total, sorted(eof)))
    watermarks = {}
    for p in partitions:
        try:
            watermarks[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
        except KafkaException as e:
            fail("get_watermark_offsets(%s, %d) failed: %s" % (topic, p, e))
    try:
        c.close()
    except Exception as e:  # noqa: BLE001 - close errors don't change the verdict
        log("consumer close error (ignored): %s" % e)
    return got, watermarks


def create_topic(topic, partitions, timeout=30, config=None):
    """CreateTopics with `partitions` and optional topic config overrides; returns the AdminClient."""
    a = admin()
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=compat.replication_factor(), config=config or {})],
                         operation_timeout=timeout, request_timeout=timeout)
    try:
        fs[topic].result(timeout=timeout)
    except Exception as e:  # noqa: BLE001
        fail("create_topics(%s, %d partitions, config %s) failed: %r" % (topic, partitions, config or {}, e))
    return a


def wait_partitions(client, topic, n, timeout=30):
    """Wait until metadata shows `topic` with exactly n partitions, each with
    a leader; returns the TopicMetadata. Fails with what was last seen."""
    dl = Deadline(timeout)
    seen = "nothing"
    while True:
        try:
            md = client.list_topics(topic=topic, timeout=max(1.0, min(5.0, dl.left())))
            tm = md.topics.get(topic)
            if tm is None:
                seen = "topic not in metadata"
            elif tm.error is not None:
                seen = "topic error %s" % tm.error
            elif len(tm.partitions) != n:
                seen = "%d partitions %s" % (len(tm.partitions), sorted(tm.partitions))
            elif any(pm.leader < 0 or pm.error is not None for pm in tm.partitions.values()):
                seen = "partition without leader: %s" % {
                    p: (pm.leader, str(pm.error)) for p, pm in tm.partitions.items()}
            elif any(pm.leader not in md.brokers for pm in tm.partitions.values()):
                seen = "leader not among brokers %s" % sorted(md.brokers)
            else:
                return tm
        except KafkaException as e:
            seen = "list_topics error %s" % e
        if dl.expired():
            fail("metadata for %s: expected %d partitions with leaders, last saw: %s" % (topic, n, seen))
        time.sleep(0.2)
