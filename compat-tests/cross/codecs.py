"""Every codec produced by each Python client is consumed byte-identical by each.

For codec in none, gzip, snappy, lz4, zstd and producer in confluent-kafka
(librdkafka: raw snappy blocks), kafka-python and aiokafka (xerial-framed
snappy): produce COMPAT_CODEC_MESSAGES records (keys, values and headers of
random bytes, some null) to a one-partition topic, then read them back with
every consumer and compare key, value, headers and offsets exactly. The broker
validates each batch (decompressing it, bounded) and stores it as produced.
"""

import asyncio
import os
import random

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import compat
from compat import Deadline, fail, log

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CLIENTS = ["confluent", "kafka-python", "aiokafka"]
N = int(os.environ.get("COMPAT_CODEC_MESSAGES", "300"))


def records(seed):
    rnd = random.Random(seed)
    out = []
    for i in range(N):
        key = None if i % 7 == 0 else bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 20)))
        # Compressible and incompressible halves.
        value = None if (i % 11 == 5 and key is not None) else (b"v%06d-" % i) * rnd.randint(1, 40) + bytes(
            rnd.getrandbits(8) for _ in range(rnd.randint(0, 50)))
        headers = [("h%d" % j, bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 8)))) for j in range(i % 3)]
        out.append((key, value, headers))
    return out


def norm_headers(h):
    return [(k if isinstance(k, str) else k.decode(), bytes(v) if v is not None else None) for k, v in (h or [])]


# ---------------------------------------------------------------- producers

def produce_confluent(topic, codec, recs):
    p = Producer({"bootstrap.servers": compat.bootstrap(), "compression.type": codec, "linger.ms": 20,
                  "enable.idempotence": True})
    errors = []
    for k, v, h in recs:
        p.produce(topic, key=k, value=v, headers=h or None, partition=0,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        p.poll(0)
    if p.flush(60) != 0 or errors:
        fail("confluent %s: %d undelivered, errors %r" % (codec, len(p), errors[:3]))


def produce_kafka_python(topic, codec, recs):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=compat.bootstrap(), compression_type=None if codec == "none" else codec,
                      linger_ms=20)
    futures = [p.send(topic, key=k, value=v, headers=h, partition=0) for k, v, h in recs]
    p.flush(60)
    for f in futures:
        f.get(timeout=30)
    p.close(5)


def produce_aiokafka(topic, codec, recs):
    from aiokafka import AIOKafkaProducer

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=compat.bootstrap(),
                             compression_type=None if codec == "none" else codec, linger_ms=20,
                             enable_idempotence=True)
        await p.start()
        try:
            futs = [await p.send(topic, key=k, value=v, headers=h, partition=0) for k, v, h in recs]
            for f in futs:
                await f
        finally:
            await p.stop()

    asyncio.run(run())


# ---------------------------------------------------------------- consumers

def consume_confluent(topic):
    c = Consumer({"bootstrap.servers": compat.bootstrap(), "group.id": "compat-unused", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out, dl = [], Deadline(60)
    while len(out) < N and not dl.expired():
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail("confluent consume %s: %s" % (topic, m.error()))
        out.append((m.offset(), m.key(), m.value(), norm_headers(m.headers())))
    c.close()
    return out


def consume_kafka_python(topic):
    from kafka import KafkaConsumer, TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=None, enable_auto_commit=False)
    tp = KTP(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    out, dl = [], Deadline(60)
    while len(out) < N and not dl.expired():
        for msgs in c.poll(timeout_ms=500).values():
            out.extend((m.offset, m.key, m.value, norm_headers(m.headers)) for m in msgs)
    c.close()
    return out


def consume_aiokafka(topic):
    from aiokafka import AIOKafkaConsumer, TopicPartition as ATP

    async def run():
        c = AIOKafkaConsumer(bootstrap_servers=compat.bootstrap(), group_id=None, enable_auto_commit=False)
        await c.start()
        try:
            tp = ATP(topic, 0)
            c.assign([tp])
            await c.seek_to_beginning(tp)
            out, dl = [], Deadline(60)
            while len(out) < N and not dl.expired():
                for msgs in (await c.getmany(timeout_ms=500)).values():
                    out.extend((m.offset, m.key, m.value, norm_headers(m.headers)) for m in msgs)
            return out
        finally:
            await c.stop()

    return asyncio.run(run())


PRODUCE = {"confluent": produce_confluent, "kafka-python": produce_kafka_python, "aiokafka": produce_aiokafka}
CONSUME = {"confluent": consume_confluent, "kafka-python": consume_kafka_python, "aiokafka": consume_aiokafka}


def main():
    admin = AdminClient({"bootstrap.servers": compat.bootstrap()})
    topics = {(codec, p): compat.topic("-%s-%s" % (codec, p)) for codec in CODECS for p in CLIENTS}
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
        f.result(30)
    cells = 0
    for (codec, producer), topic in sorted(topics.items()):
        recs = records(hash((codec, producer)) & 0xffff)
        PRODUCE[producer](topic, codec, recs)
        want = [(i, k, v, norm_headers(h)) for i, (k, v, h) in enumerate(recs)]
        for consumer in CLIENTS:
            got = CONSUME[consumer](topic)
            if got != want:
                bad = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                fail("%s produced with %s, %s consumed %d/%d records; first difference at %d: got %r want %r" % (
                    codec, producer, consumer, len(got), N, bad, got[bad:bad + 1], want[bad:bad + 1]))
            cells += 1
        log("%-6s by %-12s: read back identical by %s" % (codec, producer, ", ".join(CLIENTS)))
    compat.passed("%d codec x producer x consumer combinations byte-identical (%d records each)" % (cells, N))


if __name__ == "__main__":
    main()
