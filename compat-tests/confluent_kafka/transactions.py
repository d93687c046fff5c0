#!/usr/bin/env python3
"""confluent-kafka transactions (KIP-98), librdkafka's transactional producer.

1. topic $COMPAT_TOPIC with 2 partitions (+ `-out` with 2 and `-fence` with 1).
2. One producer (transactional.id unique per run): init_transactions; A: 20 records
   committed, B: 15 aborted, C: 10 committed (record i to partition i % 2, value "A-i").
3. isolation.level=read_committed from the beginning (assign): exactly A and C, each
   once, at Kafka's offsets (one marker offset after each transaction), in order.
4. read_uncommitted: all 45 records of A, B and C; no control record delivered;
   end offsets = records + 3 markers per partition.
5. Consume-transform-produce: D (committed) writes A's records transformed to `-out`
   and send_offsets_to_transaction() for group G (consumer_group_metadata() of a
   consumer in G): committed() shows them; E (aborted) does the same for C's records
   with later offsets: `-out` (read_committed) holds only D's records and G's
   committed offsets did not move.
6. Zombie fencing: P1 (transactional.id T) begins and produces; P2 with T inits; P1's
   next produce/commit fails with a fenced error (_FENCED / PRODUCER_FENCED /
   INVALID_PRODUCER_EPOCH); read_committed sees only P2's committed records.
"""

import time
import traceback

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

import compat
import ck_helpers as ck
from compat import Deadline, fail, log, passed

TXN_TIMEOUT = 30  # seconds, any one transactional call
READ_TIMEOUT = 60
FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def txn_producer(tid):
    return ck.producer(**{"transactional.id": tid})


def call(what, fn, *args):
    try:
        return fn(*args)
    except KafkaException as e:
        fail("%s failed: %s" % (what, e.args[0]))


def produce(p, topic, recs, what):
    """Produce [(partition, key, value)] inside the open transaction and wait for
    every delivery report (all must succeed)."""
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append((msg.value(), err))

    for q, k, v in recs:
        try:
            p.produce(topic, key=k, value=v, partition=q, on_delivery=cb)
        except KafkaException as e:
            fail("%s: produce(%r) raised %s" % (what, v, e.args[0]))
        p.poll(0)
    left = p.flush(TXN_TIMEOUT)
    if left:
        fail("%s: %d record(s) undelivered after %ds" % (what, left, TXN_TIMEOUT))
    if errors:
        fail("%s: %d delivery error(s), first %r: %s" % (what, len(errors), errors[0][0], errors[0][1]))


def run_txn(p, topic, name, n, commit):
    call("begin_transaction (%s)" % name, p.begin_transaction)
    produce(p, topic, compat.txn_records(name, n), "transaction %s" % name)
    if commit:
        call("commit_transaction (%s)" % name, p.commit_transaction, TXN_TIMEOUT)
    else:
        call("abort_transaction (%s)" % name, p.abort_transaction, TXN_TIMEOUT)
    log("transaction %s: %d records, %s" % (name, n, "committed" if commit else "aborted"))


def read_all(topic, npart, isolation, timeout=READ_TIMEOUT):
    """assign() every partition from the beginning with `isolation`; read until each
    partition reported EOF at (or past) its high watermark (taken once at the start:
    nothing is written meanwhile, so for read_committed the EOF offset, the LSO, must
    reach it), or fail at the timeout. Returns ({partition: [(offset, key, value)]},
    {partition: high watermark})."""
    c = ck.consumer(**{"isolation.level": isolation})
    highs = {}
    for q in range(npart):
        try:
            highs[q] = c.get_watermark_offsets(TopicPartition(topic, q), timeout=10, cached=False)[1]
        except KafkaException as e:
            fail("get_watermark_offsets(%s, %d) failed: %s" % (topic, q, e))
    c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in range(npart)])
    got = {q: [] for q in range(npart)}
    eof = {}
    dl = Deadline(timeout)
    while not all(eof.get(q, -1) >= highs[q] for q in range(npart)):
        if dl.expired():
            fail("%s read of %s: after %ds %s records, EOF at %s, high watermarks %s" % (
                isolation, topic, timeout, {q: len(r) for q, r in got.items()}, eof, highs))
        for m in c.consume(num_messages=1000, timeout=0.5):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    eof[m.partition()] = m.offset()
                    continue
                if err.fatal():
                    fail("%s consumer: fatal error %s" % (isolation, err))
                log("%s consumer error (non-fatal): %s" % (isolation, err))
                continue
            got.setdefault(m.partition(), []).append((m.offset(), m.key(), m.value()))
            eof.pop(m.partition(), None)
    c.close()
    return got, highs


def kafka_error(e):
    """The KafkaError of a KafkaException, also one that is the cause of `e`."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError):
            return e.args[0]
        e = e.__cause__ or e.__context__
    return None


def committed(cg, topic):
    try:
        res = cg.committed([TopicPartition(topic, q) for q in range(compat.TXN_PARTITIONS)], timeout=10)
    except KafkaException as e:
        fail("committed() for group G failed: %s" % e.args[0])
    out = {}
    for tp in res:
        if tp.error is not None:
            fail("committed() for group G, partition %d: %s" % (tp.partition, tp.error))
        out[tp.partition] = tp.offset
    return out


def main():
    topic = compat.topic()
    out_topic, fence_topic = topic + "-out", topic + "-fence"
    npart = compat.TXN_PARTITIONS
    a = ck.create_topic(topic, npart)
    ck.create_topic(out_topic, npart)
    ck.create_topic(fence_topic, 1)
    for t, n in ((topic, npart), (out_topic, npart), (fence_topic, 1)):
        ck.wait_partitions(a, t, n)
    log("topics %s (%d partitions), %s, %s" % (topic, npart, out_topic, fence_topic))

    # 2. A committed, B aborted, C committed.
    tid = topic + "-txn"
    p = txn_producer(tid)
    call("init_transactions", p.init_transactions, TXN_TIMEOUT)
    log("init_transactions done (transactional.id %s)" % tid)
    for name, n, commit in compat.TXN_PLAN:
        run_txn(p, topic, name, n, commit)

    # 3. read_committed.
    got_rc, _ = read_all(topic, npart, "read_committed")
    n_rc = compat.check_txn_read(got_rc, True, "read_committed")
    log("read_committed: %d records of A and C, none of B, in order" % n_rc)

    # 4. read_uncommitted.
    got_ru, highs = read_all(topic, npart, "read_uncommitted")
    n_ru = compat.check_txn_read(got_ru, False, "read_uncommitted", ends=highs)
    log("read_uncommitted: all %d records, no control record; high watermarks %s" % (n_ru, highs))

    # 5. consume-transform-produce with the group's offsets in the transaction.
    group = topic + "-G"
    cg = ck.consumer(**{"group.id": group, "isolation.level": "read_committed"})
    meta = cg.consumer_group_metadata()
    d_out, d_off, e_out, e_off = compat.txn_transform(got_rc)
    before = committed(cg, topic)
    log("group %s committed offsets before: %s" % (group, before))

    call("begin_transaction (D)", p.begin_transaction)
    produce(p, out_topic, d_out, "transaction D")
    call("send_offsets_to_transaction (D)", p.send_offsets_to_transaction,
         [TopicPartition(topic, q, o) for q, o in sorted(d_off.items())], meta, TXN_TIMEOUT)
    call("commit_transaction (D)", p.commit_transaction, TXN_TIMEOUT)
    dl = Deadline(15)
    while True:
        now = committed(cg, topic)
        if now == d_off:
            break
        if dl.expired():
            fail("after committing D, group %s committed offsets: expected %s, got %s" % (group, d_off, now))
        time.sleep(0.1)
    log("transaction D committed: %d records to %s, group offsets %s visible" % (len(d_out), out_topic, now))

    call("begin_transaction (E)", p.begin_transaction)
    produce(p, out_topic, e_out, "transaction E")
    call("send_offsets_to_transaction (E)", p.send_offsets_to_transaction,
         [TopicPartition(topic, q, o) for q, o in sorted(e_off.items())], meta, TXN_TIMEOUT)
    call("abort_transaction (E)", p.abort_transaction, TXN_TIMEOUT)
    # Reading -out to its end with read_committed waits until E's abort markers are in.
    got_out, _ = read_all(out_topic, npart, "read_committed")
    compat.check_txn_out(got_out, d_out, "read_committed %s" % out_topic)
    now = committed(cg, topic)
    if now != d_off:
        fail("after aborting E (offsets %s), group %s committed offsets: expected %s (D's), got %s"
             % (e_off, group, d_off, now))
    log("transaction E aborted: %s holds only D's %d records, group offsets still %s" % (out_topic, len(d_out), now))
    cg.close()

    # 6. zombie fencing.
    zid = topic + "-zombie"
    p1 = txn_producer(zid)
    call("P1 init_transactions", p1.init_transactions, TXN_TIMEOUT)
    call("P1 begin_transaction", p1.begin_transaction)
    produce(p1, fence_topic, compat.txn_fence_records("Z", compat.TXN_ZOMBIE), "P1 (before fencing)")
    log("P1: transaction open, %d records written" % compat.TXN_ZOMBIE)
    p2 = txn_producer(zid)
    call("P2 init_transactions", p2.init_transactions, TXN_TIMEOUT)
    log("P2: init_transactions with the same transactional.id done")
    seen = []
    errs = []
    (q, k, v), = compat.txn_fence_records("Z", 1, start=compat.TXN_ZOMBIE)
    try:
        p1.produce(fence_topic, key=k, value=v, partition=q, on_delivery=lambda err, msg: errs.append(err))
        left = p1.flush(TXN_TIMEOUT)
        if left:
            fail("P1: record produced after fencing still undelivered after %ds" % TXN_TIMEOUT)
    except Exception as e:  # noqa: BLE001
        # flush() raises the fatal error, wrapped in a SystemError when it is raised
        # while the delivery callback runs.
        ke = kafka_error(e)
        if ke is None:
            fail("P1 produce/flush after fencing raised %r" % (e,))
        seen.append(("produce/flush", ke))
    seen += [("delivery report", e) for e in errs if e is not None]
    try:
        p1.commit_transaction(TXN_TIMEOUT)
        fail("P1 commit_transaction() succeeded after P2 fenced it (earlier errors: %s)" % seen)
    except KafkaException as e:
        seen.append(("commit_transaction", e.args[0]))
    log("P1 errors: %s" % "; ".join("%s: %s (code %d, fatal %s)" % (w, e.str(), e.code(), e.fatal()) for w, e in seen))
    if not any(e.code() in FENCED for _, e in seen):
        fail("P1 saw no fenced error (_FENCED, PRODUCER_FENCED or INVALID_PRODUCER_EPOCH): %s" % seen)
    call("P2 begin_transaction", p2.begin_transaction)
    produce(p2, fence_topic, compat.txn_fence_records("P2", compat.TXN_SUCCESSOR), "P2")
    call("P2 commit_transaction", p2.commit_transaction, TXN_TIMEOUT)
    got_f, _ = read_all(fence_topic, 1, "read_committed")
    compat.check_txn_fence(got_f, "read_committed %s" % fence_topic)
    log("fencing: P1 fenced, read_committed sees only P2's %d records" % compat.TXN_SUCCESSOR)

    passed("A/B/C: read_committed %d records, read_uncommitted %d, no markers; offsets in D committed %s, "
           "E aborted; zombie fenced (%s)" % (n_rc, n_ru, d_off, [w for w, e in seen if e.code() in FENCED]))


try:
    main()
except Exception as e:  # noqa: BLE001 - an unexpected error is a failure with its traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
