#!/usr/bin/env python3
"""confluent-kafka (librdkafka): SASL re-authentication (KIP-368, issue 16).

Own broker (lib/broker.py `sasl_plain_broker()` plus `connections.max.reauth.ms=1500`):
sessions last 1.5 s, told to clients in SaslAuthenticate; a client must re-authenticate
on the same connection before its session ends, or its next request closes it.

1. alice's producer sends a record every 50 ms for 6 s (acks=all): every record is
   delivered, none fails, and librdkafka's error callback reports nothing;
2. a consumer (assign) reads every record back;
3. the broker counted re-authentications (`strom_sasl_reauthentications` on /metrics):
   at least 2 per 6 s of the producer's connection(s).
"""

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import compat
from broker import SASL_USERS, sasl_plain_broker
from compat import Deadline, fail, log, passed

own = sasl_plain_broker()
own.overrides.append(("connections.max.reauth.ms", "1500"))
own = own.close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, PLAIN, connections.max.reauth.ms=1500) on %s" % own.bootstrap)
TOPIC = compat.topic()
SECONDS = 6


def alice(**extra):
    cfg = {"bootstrap.servers": own.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
           "sasl.username": "alice", "sasl.password": SASL_USERS["alice"]}
    cfg.update(extra)
    return cfg


def main():
    admin = AdminClient(alice())
    admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(30)
    errors, delivered, failed = [], [], []
    p = Producer(alice(acks="all", error_cb=lambda e: errors.append(str(e))))

    def cb(err, msg):
        (failed if err is not None else delivered).append(msg.value())

    before = own.metric("strom_sasl_reauthentications")
    sent, end = 0, time.monotonic() + SECONDS
    while time.monotonic() < end:
        p.produce(TOPIC, value=b"r%d" % sent, on_delivery=cb)
        sent += 1
        p.poll(0.05)
    if p.flush(30):
        fail("records still undelivered 30 s after the last send")
    reauths = own.metric("strom_sasl_reauthentications") - before
    if failed or errors or len(delivered) != sent:
        fail("%d sent, %d delivered, %d failed, client errors %s" % (sent, len(delivered), len(failed), errors[:3]))
    if reauths < 2:
        fail("the broker counted %d re-authentications in %d s of 1.5-s sessions" % (reauths, SECONDS))

    c = Consumer(alice(**{"group.id": "strom-compat-unused", "enable.partition.eof": True}))
    c.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
    got, dl = [], Deadline(60)
    while True:
        if dl.expired():
            fail("read %d of %d records back in 60 s" % (len(got), sent))
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            if m.error().code() == KafkaError._PARTITION_EOF and len(got) >= sent:
                break
            if m.error().code() != KafkaError._PARTITION_EOF:
                fail("consumer error %s" % m.error())
            continue
        got.append(m.value())
    c.close()
    if got != [b"r%d" % i for i in range(sent)]:
        fail("read back %d records, not the %d sent in order" % (len(got), sent))
    passed("%d records over %d s with 1.5-s sessions: all delivered, none failed, no client error; "
           "%d re-authentications counted by the broker; all read back in order" % (sent, SECONDS, reauths))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
