"""kafka-python helpers shared by the scenarios in this dir.

Producers keep kafka-python's defaults (enable_idempotence=True, acks=all,
so InitProducerId is exercised). Consumers use group_id=None +
assign() + seek_to_beginning(): no consumer group, nothing committed.
"""

import logging
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

import compat
from compat import Deadline, fail, log

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def producer(**extra):
    return KafkaProducer(bootstrap_servers=compat.bootstrap(), **extra)


def admin():
    return KafkaAdminClient(bootstrap_servers=compat.bootstrap(), request_timeout_ms=30000)


def produce_all(p, topic, records, timeout=120):
    """records: iterable of dicts with key, value, optional headers, ts,
    partition. Returns [(partition, offset)] in produce order."""
    futures = []
    dl = Deadline(timeout)
    for r in records:
        futures.append(p.send(topic, key=r["key"], value=r["value"],
                              headers=r.get("headers"), timestamp_ms=r.get("ts"),
                              partition=r.get("partition")))
        if dl.expired():
            fail("timed out queueing messages (at %d)" % len(futures))
    p.flush(timeout=max(1.0, dl.left()))
    reports = []
    for i, f in enumerate(futures):
        try:
            md = f.get(timeout=max(0.1, dl.left()))
        except Exception as e:  # noqa: BLE001
            fail("delivery failed for message index %d: %r" % (i, e))
        reports.append((md.partition, md.offset))
    return reports


def consumer():
    return KafkaConsumer(
        bootstrap_servers=compat.bootstrap(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def consume_all(topic, partitions, expected_total, timeout=120):
    """assign() + seek_to_beginning() on `partitions`, poll until
    `expected_total` records arrived and the position of every partition
    reached its end offset, or the timeout. Returns ({partition: [record]},
    {partition: (beginning_offset, end_offset)})."""
    c = consumer()
    tps = [TopicPartition(topic, p) for p in partitions]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got = {p: [] for p in partitions}
    total = 0
    dl = Deadline(timeout)
    ends = None
    while not dl.expired():
        batch = c.poll(timeout_ms=500, max_records=2000)
        for tp, recs in batch.items():
            got.setdefault(tp.partition, []).extend(recs)
            total += len(recs)
        if total >= expected_total:
            if ends is None:
                ends = c.end_offsets(tps)
            if all(c.position(tp) >= ends[tp] for tp in tps):
                # One more short poll so extra (unexpected) records show up.
                for tp, recs in c.poll(timeout_ms=300).items():
                    got.setdefault(tp.partition, []).extend(recs)
                    total += len(recs)
                break
    else:
        log("consume timed out after %ds with %d/%d records" % (timeout, total, expected_total))
    beg = c.beginning_offsets(tps)
    ends = c.end_offsets(tps)
    wm = {tp.partition: (beg[tp], ends[tp]) for tp in tps}
    try:
        c.close(autocommit=False)
    except Exception as e:  # noqa: BLE001
        log("consumer close error (ignored): %r" % e)
    return got, wm


def create_topic(topic, partitions, timeout=30, topic_configs=None):
    """CreateTopics with `partitions` and optional config overrides; returns the admin client."""
    a = admin()
    try:
        resp = a.create_topics([NewTopic(name=topic, num_partitions=partitions, replication_factor=compat.replication_factor(),
                                         topic_configs=topic_configs or {})],
                               timeout_ms=timeout * 1000)
    except Exception as e:  # noqa: BLE001
        fail("create_topics(%s, %d partitions, configs %s) failed: %r" % (topic, partitions, topic_configs or {}, e))
    log("create_topics response: %s" % (resp,))
    return a


def wait_partitions(topic, n, timeout=30, admin_client=None):
    """Wait until Metadata (KafkaAdminClient.describe_topics) shows `topic`
    without error and with n partitions, each with a leader. Returns the
    topic's metadata dict."""
    dl = Deadline(timeout)
    seen = "nothing"
    a = admin_client or admin()
    while True:
        try:
            tops = [t for t in a.describe_topics([topic]) if t.get("name", t.get("topic")) == topic]
            if not tops:
                seen = "topic not in metadata"
            else:
                t = tops[0]
                parts = t.get("partitions") or []
                if t.get("error_code", 0) != 0:
                    seen = "topic error_code %s" % t.get("error_code")
                elif len(parts) != n:
                    seen = "%d partitions" % len(parts)
                elif any(pp.get("error_code", 0) != 0 or pp.get("leader_id", pp.get("leader", -1)) < 0 for pp in parts):
                    seen = "partition error/no leader: %s" % parts
                else:
                    return t
        except Exception as e:  # noqa: BLE001
            seen = "error %r" % e
        if dl.expired():
            fail("metadata for %s: expected %d partitions with leaders, last saw: %s" % (topic, n, seen))
        time.sleep(0.3)
