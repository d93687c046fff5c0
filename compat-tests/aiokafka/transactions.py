#!/usr/bin/env python3
"""aiokafka transactions (KIP-98): AIOKafkaProducer(transactional_id=...).

1. topic $COMPAT_TOPIC with 2 partitions (+ `-out` with 2 and `-fence` with 1).
2. One producer (transactional_id unique per run; start() sends InitProducerId):
   A: 20 records committed, B: 15 aborted, C: 10 committed (record i to partition
   i % 2, value "A-i").
3. isolation_level="read_committed" from the beginning (assign): exactly A and C, each
   once, at Kafka's offsets (one marker offset after each transaction), in order.
4. read_uncommitted: all 45 records of A, B and C; no control record delivered;
   end offsets = records + 3 markers per partition.
5. Consume-transform-produce: D (committed) writes A's records transformed to `-out`
   and send_offsets_to_transaction(offsets, group_id) for group G (aiokafka takes a
   group id only, no group metadata): committed() of a consumer in G shows them; E
   (aborted) does the same for C's records with later offsets: `-out`
   (read_committed) holds only D's records, G's offsets did not move.
6. Zombie fencing: P1 (transactional_id T) begins and produces; P2 with T start()s
   (InitProducerId); P1's next send/commit fails with ProducerFenced; read_committed
   sees only P2's committed records.
"""

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import ProducerFenced

import aio_helpers as ah
import compat
from compat import Deadline, fail, log, passed

TXN_TIMEOUT = 30  # seconds, any one transactional call
READ_TIMEOUT = 60


async def txn_producer(tid):
    """start() waits for InitProducerId: aiokafka's init_transactions."""
    return await ah.producer(transactional_id=tid, enable_idempotence=True)


async def call(what, aw):
    try:
        return await ah.bounded(aw, TXN_TIMEOUT, what)
    except Exception as e:  # noqa: BLE001
        fail("%s failed: %r" % (what, e))


async def produce(p, topic, recs, what):
    """send() [(partition, key, value)] inside the open transaction; every send must succeed."""
    futures = []
    for q, k, v in recs:
        futures.append((v, await call("%s: send(%r)" % (what, v), p.send(topic, key=k, value=v, partition=q))))
    for v, f in futures:
        await call("%s: delivery of %r" % (what, v), f)


async def run_txn(p, topic, name, n, commit):
    await call("begin_transaction (%s)" % name, p.begin_transaction())
    await produce(p, topic, compat.txn_records(name, n), "transaction %s" % name)
    if commit:
        await call("commit_transaction (%s)" % name, p.commit_transaction())
    else:
        await call("abort_transaction (%s)" % name, p.abort_transaction())
    log("transaction %s: %d records, %s" % (name, n, "committed" if commit else "aborted"))


async def read_all(topic, npart, isolation, timeout=READ_TIMEOUT):
    """assign() every partition from the beginning with `isolation`; getmany() until
    each position reached the end offset taken at the start (nothing is written
    meanwhile; for read_committed it is the LSO, which must have reached the high
    watermark), then one more getmany() so anything beyond shows up; fail at the
    timeout. Returns ({partition: [(offset, key, value)]}, {partition: end offset})."""
    c = AIOKafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", isolation_level=isolation)
    await ah.bounded(c.start(), 30, "consumer start")
    tps = [TopicPartition(topic, q) for q in range(npart)]
    c.assign(tps)
    await ah.bounded(c.seek_to_beginning(*tps), 30, "seek_to_beginning")
    ends = {tp.partition: o for tp, o in (await ah.bounded(c.end_offsets(tps), 30, "end_offsets")).items()}
    got = {q: [] for q in range(npart)}

    def take(batch):
        for tp, recs in batch.items():
            got.setdefault(tp.partition, []).extend((r.offset, r.key, r.value) for r in recs)

    dl = Deadline(timeout)
    while True:
        take(await c.getmany(timeout_ms=500, max_records=2000))
        pos = {tp.partition: await ah.bounded(c.position(tp), 30, "position") for tp in tps}
        if all(pos[q] >= ends[q] for q in range(npart)):
            break
        if dl.expired():
            fail("%s read of %s: after %ds %s records, positions %s, end offsets %s" % (
                isolation, topic, timeout, {q: len(r) for q, r in got.items()}, pos, ends))
    take(await c.getmany(timeout_ms=500))
    await ah.bounded(c.stop(), 30, "consumer stop")
    return got, ends


async def committed(cg, topic):
    out = {}
    for q in range(compat.TXN_PARTITIONS):
        try:
            out[q] = await ah.bounded(cg.committed(TopicPartition(topic, q)), 15, "committed()")
        except Exception as e:  # noqa: BLE001
            fail("committed() for group G, partition %d: %r" % (q, e))
    return out


async def main():
    topic = compat.topic()
    out_topic, fence_topic = topic + "-out", topic + "-fence"
    npart = compat.TXN_PARTITIONS
    a = await ah.admin()
    for t, n in ((topic, npart), (out_topic, npart), (fence_topic, 1)):
        await ah.create_topic(a, t, n)
        await ah.wait_partitions(a, t, n)
    await a.close()
    log("topics %s (%d partitions), %s, %s" % (topic, npart, out_topic, fence_topic))

    # 2. A committed, B aborted, C committed.
    tid = topic + "-txn"
    p = await txn_producer(tid)
    log("producer started: InitProducerId done (transactional_id %s)" % tid)
    for name, n, commit in compat.TXN_PLAN:
        await run_txn(p, topic, name, n, commit)

    # 3. read_committed.
    got_rc, _ = await read_all(topic, npart, "read_committed")
    n_rc = compat.check_txn_read(got_rc, True, "read_committed")
    log("read_committed: %d records of A and C, none of B, in order" % n_rc)

    # 4. read_uncommitted.
    got_ru, ends = await read_all(topic, npart, "read_uncommitted")
    n_ru = compat.check_txn_read(got_ru, False, "read_uncommitted", ends=ends)
    log("read_uncommitted: all %d records, no control record; end offsets %s" % (n_ru, ends))

    # 5. consume-transform-produce with the group's offsets in the transaction.
    group = topic + "-G"
    cg = AIOKafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=group, enable_auto_commit=False,
                          auto_offset_reset="earliest", isolation_level="read_committed")
    await ah.bounded(cg.start(), 30, "group G consumer start")
    cg.assign([TopicPartition(topic, q) for q in range(npart)])
    d_out, d_off, e_out, e_off = compat.txn_transform(got_rc)
    log("group %s committed offsets before: %s" % (group, await committed(cg, topic)))

    def offsets(off):
        return {TopicPartition(topic, q): o for q, o in off.items()}

    await call("begin_transaction (D)", p.begin_transaction())
    await produce(p, out_topic, d_out, "transaction D")
    await call("send_offsets_to_transaction (D)", p.send_offsets_to_transaction(offsets(d_off), group))
    await call("commit_transaction (D)", p.commit_transaction())
    dl = Deadline(15)
    while True:
        now = await committed(cg, topic)
        if now == d_off:
            break
        if dl.expired():
            fail("after committing D, group %s committed offsets: expected %s, got %s" % (group, d_off, now))
        await asyncio.sleep(0.1)
    log("transaction D committed: %d records to %s, group offsets %s visible" % (len(d_out), out_topic, now))

    await call("begin_transaction (E)", p.begin_transaction())
    await produce(p, out_topic, e_out, "transaction E")
    await call("send_offsets_to_transaction (E)", p.send_offsets_to_transaction(offsets(e_off), group))
    await call("abort_transaction (E)", p.abort_transaction())
    # Reading -out to its end with read_committed waits until E's abort markers are in.
    got_out, _ = await read_all(out_topic, npart, "read_committed")
    compat.check_txn_out(got_out, d_out, "read_committed %s" % out_topic)
    now = await committed(cg, topic)
    if now != d_off:
        fail("after aborting E (offsets %s), group %s committed offsets: expected %s (D's), got %s"
             % (e_off, group, d_off, now))
    log("transaction E aborted: %s holds only D's %d records, group offsets still %s" % (out_topic, len(d_out), now))
    await ah.bounded(cg.stop(), 30, "group G consumer stop")

    # 6. zombie fencing.
    zid = topic + "-zombie"
    p1 = await txn_producer(zid)
    await call("P1 begin_transaction", p1.begin_transaction())
    await produce(p1, fence_topic, compat.txn_fence_records("Z", compat.TXN_ZOMBIE), "P1 (before fencing)")
    log("P1: transaction open, %d records written" % compat.TXN_ZOMBIE)
    p2 = await txn_producer(zid)
    log("P2: started (InitProducerId) with the same transactional_id")
    seen = []
    (q, k, v), = compat.txn_fence_records("Z", 1, start=compat.TXN_ZOMBIE)
    try:
        fut = await ah.bounded(p1.send(fence_topic, key=k, value=v, partition=q), TXN_TIMEOUT, "P1 send")
        await ah.bounded(fut, TXN_TIMEOUT, "P1 delivery")
    except Exception as e:  # noqa: BLE001
        seen.append(("send", e))
    try:
        await ah.bounded(p1.commit_transaction(), TXN_TIMEOUT, "P1 commit_transaction")
        fail("P1 commit_transaction() succeeded after P2 fenced it (earlier errors: %r)" % seen)
    except Exception as e:  # noqa: BLE001
        seen.append(("commit_transaction", e))
    log("P1 errors: %s" % "; ".join("%s: %r" % (w, e) for w, e in seen))
    if not any(isinstance(e, ProducerFenced) for _, e in seen):
        fail("P1 saw no ProducerFenced: %r" % seen)
    await call("P2 begin_transaction", p2.begin_transaction())
    await produce(p2, fence_topic, compat.txn_fence_records("P2", compat.TXN_SUCCESSOR), "P2")
    await call("P2 commit_transaction", p2.commit_transaction())
    got_f, _ = await read_all(fence_topic, 1, "read_committed")
    compat.check_txn_fence(got_f, "read_committed %s" % fence_topic)
    log("fencing: P1 fenced, read_committed sees only P2's %d records" % compat.TXN_SUCCESSOR)

    passed("A/B/C: read_committed %d records, read_uncommitted %d, no markers; offsets in D committed %s, "
           "E aborted; zombie fenced (%s)" % (n_rc, n_ru, d_off, [w for w, e in seen if isinstance(e, ProducerFenced)]))


ah.run(main())
