#!/usr/bin/env python3
"""kafka-python transactions (KIP-98): KafkaProducer(transactional_id=...).

1. topic $COMPAT_TOPIC with 2 partitions (+ `-out` with 2 and `-fence` with 1).
2. One producer (transactional_id unique per run): init_transactions(); A: 20 records
   committed, B: 15 aborted, C: 10 committed (record i to partition i % 2, value "A-i").
3. isolation_level="read_committed" from the beginning (assign): exactly A and C, each
   once, at Kafka's offsets (one marker offset after each transaction), in order.
4. read_uncommitted: all 45 records of A, B and C; no control record delivered;
   end offsets = records + 3 markers per partition.
5. Consume-transform-produce: D (committed) writes A's records transformed to `-out`
   and send_offsets_to_transaction(offsets, consumer.group_metadata()) for group G:
   committed() shows them; E (aborted) does the same for C's records with later
   offsets: `-out` (read_committed) holds only D's records, G's offsets did not move.
6. Zombie fencing: P1 (transactional_id T) begins and produces; P2 with T
   init_transactions(); P1's next send/commit fails with ProducerFencedError (or
   InvalidProducerEpochError, or a KafkaError carrying one); read_committed sees only
   P2's committed records.

commit_transaction(), abort_transaction() and send_offsets_to_transaction() wait
without a timeout in kafka-python 3.0.12, so each runs in a thread joined with one.
"""

import threading
import time
import traceback

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import InvalidProducerEpochError, KafkaError, ProducerFencedError
from kafka.structs import OffsetAndMetadata

import compat
import kp_helpers as kp
from compat import Deadline, fail, log, passed

TXN_TIMEOUT = 30  # seconds, any one transactional call
READ_TIMEOUT = 60


def bounded(what, fn, *args, expect_error=False):
    """fn(*args) in a daemon thread, failing the scenario after TXN_TIMEOUT. Returns
    its result, or with expect_error its exception (None if it returned)."""
    box = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=run, name=what, daemon=True)
    t.start()
    t.join(TXN_TIMEOUT)
    if t.is_alive():
        fail("%s: no result within %ds" % (what, TXN_TIMEOUT))
    if expect_error:
        return box.get("error")
    if "error" in box:
        fail("%s failed: %r" % (what, box["error"]))
    return box.get("result")


def txn_producer(tid):
    return kp.producer(transactional_id=tid, max_block_ms=TXN_TIMEOUT * 1000)


def produce(p, topic, recs, what):
    """send() [(partition, key, value)] inside the open transaction; every send must succeed."""
    futures = []
    for q, k, v in recs:
        try:
            futures.append((v, p.send(topic, key=k, value=v, partition=q)))
        except Exception as e:  # noqa: BLE001
            fail("%s: send(%r) raised %r" % (what, v, e))
    p.flush(timeout=TXN_TIMEOUT)
    for v, f in futures:
        try:
            f.get(timeout=TXN_TIMEOUT)
        except Exception as e:  # noqa: BLE001
            fail("%s: delivery of %r failed: %r" % (what, v, e))


def run_txn(p, topic, name, n, commit):
    try:
        p.begin_transaction()
    except Exception as e:  # noqa: BLE001
        fail("begin_transaction (%s) failed: %r" % (name, e))
    produce(p, topic, compat.txn_records(name, n), "transaction %s" % name)
    if commit:
        bounded("commit_transaction (%s)" % name, p.commit_transaction)
    else:
        bounded("abort_transaction (%s)" % name, p.abort_transaction)
    log("transaction %s: %d records, %s" % (name, n, "committed" if commit else "aborted"))


def read_all(topic, npart, isolation, timeout=READ_TIMEOUT):
    """assign() every partition from the beginning with `isolation`; poll until each
    position reached the end offset taken at the start (nothing is written meanwhile;
    for read_committed it is the LSO, which must have reached the high watermark), then
    one more poll so anything beyond shows up; fail at the timeout. Returns
    ({partition: [(offset, key, value)]}, {partition: end offset})."""
    c = KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", isolation_level=isolation)
    tps = [TopicPartition(topic, q) for q in range(npart)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    ends = {tp.partition: o for tp, o in c.end_offsets(tps, timeout_ms=10000).items()}
    got = {q: [] for q in range(npart)}

    def take(batch):
        for tp, recs in batch.items():
            got.setdefault(tp.partition, []).extend((r.offset, r.key, r.value) for r in recs)

    dl = Deadline(timeout)
    while True:
        take(c.poll(timeout_ms=500, max_records=2000))
        pos = {tp.partition: c.position(tp, timeout_ms=10000) for tp in tps}
        if all(pos[q] >= ends[q] for q in range(npart)):
            break
        if dl.expired():
            fail("%s read of %s: after %ds %s records, positions %s, end offsets %s" % (
                isolation, topic, timeout, {q: len(r) for q, r in got.items()}, pos, ends))
    take(c.poll(timeout_ms=500))
    c.close(autocommit=False)
    return got, ends


def committed(cg, topic):
    out = {}
    for q in range(compat.TXN_PARTITIONS):
        try:
            out[q] = cg.committed(TopicPartition(topic, q), timeout_ms=10000)
        except Exception as e:  # noqa: BLE001
            fail("committed() for group G, partition %d: %r" % (q, e))
    return out


def is_fenced(e):
    return isinstance(e, (ProducerFencedError, InvalidProducerEpochError)) or (
        isinstance(e, KafkaError) and ("ProducerFenced" in repr(e) or "InvalidProducerEpoch" in repr(e)))


def main():
    topic = compat.topic()
    out_topic, fence_topic = topic + "-out", topic + "-fence"
    npart = compat.TXN_PARTITIONS
    a = kp.create_topic(topic, npart)
    kp.create_topic(out_topic, npart)
    kp.create_topic(fence_topic, 1)
    for t, n in ((topic, npart), (out_topic, npart), (fence_topic, 1)):
        kp.wait_partitions(t, n, admin_client=a)
    log("topics %s (%d partitions), %s, %s" % (topic, npart, out_topic, fence_topic))

    # 2. A committed, B aborted, C committed.
    tid = topic + "-txn"
    p = txn_producer(tid)
    bounded("init_transactions", p.init_transactions)
    log("init_transactions done (transactional_id %s)" % tid)
    for name, n, commit in compat.TXN_PLAN:
        run_txn(p, topic, name, n, commit)

    # 3. read_committed.
    got_rc, _ = read_all(topic, npart, "read_committed")
    n_rc = compat.check_txn_read(got_rc, True, "read_committed")
    log("read_committed: %d records of A and C, none of B, in order" % n_rc)

    # 4. read_uncommitted.
    got_ru, ends = read_all(topic, npart, "read_uncommitted")
    n_ru = compat.check_txn_read(got_ru, False, "read_uncommitted", ends=ends)
    log("read_uncommitted: all %d records, no control record; end offsets %s" % (n_ru, ends))

    # 5. consume-transform-produce with the group's offsets in the transaction.
    group = topic + "-G"
    cg = KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=group, enable_auto_commit=False,
                       auto_offset_reset="earliest", isolation_level="read_committed")
    cg.assign([TopicPartition(topic, q) for q in range(npart)])
    meta = cg.group_metadata()
    d_out, d_off, e_out, e_off = compat.txn_transform(got_rc)
    log("group %s committed offsets before: %s (metadata %s)" % (group, committed(cg, topic), meta))

    def offsets(off):
        return {TopicPartition(topic, q): OffsetAndMetadata(o, "", -1) for q, o in off.items()}

    p.begin_transaction()
    produce(p, out_topic, d_out, "transaction D")
    bounded("send_offsets_to_transaction (D)", p.send_offsets_to_transaction, offsets(d_off), meta)
    bounded("commit_transaction (D)", p.commit_transaction)
    dl = Deadline(15)
    while True:
        now = committed(cg, topic)
        if now == d_off:
            break
        if dl.expired():
            fail("after committing D, group %s committed offsets: expected %s, got %s" % (group, d_off, now))
        time.sleep(0.1)
    log("transaction D committed: %d records to %s, group offsets %s visible" % (len(d_out), out_topic, now))

    p.begin_transaction()
    produce(p, out_topic, e_out, "transaction E")
    bounded("send_offsets_to_transaction (E)", p.send_offsets_to_transaction, offsets(e_off), meta)
    bounded("abort_transaction (E)", p.abort_transaction)
    # Reading -out to its end with read_committed waits until E's abort markers are in.
    got_out, _ = read_all(out_topic, npart, "read_committed")
    compat.check_txn_out(got_out, d_out, "read_committed %s" % out_topic)
    now = committed(cg, topic)
    if now != d_off:
        fail("after aborting E (offsets %s), group %s committed offsets: expected %s (D's), got %s"
             % (e_off, group, d_off, now))
    log("transaction E aborted: %s holds only D's %d records, group offsets still %s" % (out_topic, len(d_out), now))
    cg.close(autocommit=False)

    # 6. zombie fencing.
    zid = topic + "-zombie"
    p1 = txn_producer(zid)
    bounded("P1 init_transactions", p1.init_transactions)
    p1.begin_transaction()
    produce(p1, fence_topic, compat.txn_fence_records("Z", compat.TXN_ZOMBIE), "P1 (before fencing)")
    log("P1: transaction open, %d records written" % compat.TXN_ZOMBIE)
    p2 = txn_producer(zid)
    bounded("P2 init_transactions", p2.init_transactions)
    log("P2: init_transactions with the same transactional_id done")
    seen = []
    (q, k, v), = compat.txn_fence_records("Z", 1, start=compat.TXN_ZOMBIE)
    try:
        p1.send(fence_topic, key=k, value=v, partition=q).get(timeout=TXN_TIMEOUT)
    except Exception as e:  # noqa: BLE001
        seen.append(("send", e))
    err = bounded("P1 commit_transaction", p1.commit_transaction, expect_error=True)
    if err is None:
        fail("P1 commit_transaction() succeeded after P2 fenced it (earlier errors: %r)" % seen)
    seen.append(("commit_transaction", err))
    log("P1 errors: %s" % "; ".join("%s: %r" % (w, e) for w, e in seen))
    if not any(is_fenced(e) for _, e in seen):
        fail("P1 saw no fenced error (ProducerFencedError / InvalidProducerEpochError): %r" % seen)
    p2.begin_transaction()
    produce(p2, fence_topic, compat.txn_fence_records("P2", compat.TXN_SUCCESSOR), "P2")
    bounded("P2 commit_transaction", p2.commit_transaction)
    got_f, _ = read_all(fence_topic, 1, "read_committed")
    compat.check_txn_fence(got_f, "read_committed %s" % fence_topic)
    log("fencing: P1 fenced, read_committed sees only P2's %d records" % compat.TXN_SUCCESSOR)

    passed("A/B/C: read_committed %d records, read_uncommitted %d, no markers; offsets in D committed %s, "
           "E aborted; zombie fenced (%s)" % (n_rc, n_ru, d_off, [type(e).__name__ for w, e in seen if is_fenced(e)]))


try:
    main()
except Exception as e:  # noqa: BLE001 - an unexpected error is a failure with its traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
