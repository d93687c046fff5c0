#!/usr/bin/env python3
"""kafka-python: SASL re-authentication (KIP-368, issue 16).

Own broker (lib/broker.py `sasl_plain_broker()` plus `connections.max.reauth.ms=1500`):
sessions last 1.5 s, told to clients in SaslAuthenticate v1; a client must
re-authenticate on the same connection before its session ends, or its next request
closes it.

1. alice's KafkaProducer sends a record every 50 ms for 6 s (acks=all): every send's
   future succeeds;
2. a consumer (assign) reads every record back in order;
3. the broker counted re-authentications (`strom_sasl_reauthentications` on /metrics):
   at least 2.
"""

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

import compat
from broker import SASL_USERS, sasl_plain_broker
from compat import fail, log, passed

own = sasl_plain_broker()
own.overrides.append(("connections.max.reauth.ms", "1500"))
own = own.close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, PLAIN, connections.max.reauth.ms=1500) on %s" % own.bootstrap)
TOPIC = compat.topic()
SECONDS = 6


def alice(**extra):
    cfg = {"bootstrap_servers": own.bootstrap, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
           "sasl_plain_username": "alice", "sasl_plain_password": SASL_USERS["alice"]}
    cfg.update(extra)
    return cfg


def main():
    admin = KafkaAdminClient(**alice())
    admin.create_topics([NewTopic(TOPIC, 1, 1)])
    admin.close()
    p = KafkaProducer(**alice(acks="all"))
    before = own.metric("strom_sasl_reauthentications")
    futures, end = [], time.monotonic() + SECONDS
    while time.monotonic() < end:
        futures.append(p.send(TOPIC, value=b"r%d" % len(futures), partition=0))
        time.sleep(0.05)
    failed = []
    for f in futures:
        try:
            f.get(timeout=30)
        except KafkaError as e:
            failed.append(type(e).__name__)
    p.close()
    reauths = own.metric("strom_sasl_reauthentications") - before
    if failed:
        fail("%d of %d sends failed: %s" % (len(failed), len(futures), sorted(set(failed))))
    if reauths < 2:
        fail("the broker counted %d re-authentications in %d s of 1.5-s sessions" % (reauths, SECONDS))
    c = KafkaConsumer(**alice(auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=3000))
    c.assign([TopicPartition(TOPIC, 0)])
    c.seek_to_beginning()
    got = [m.value for m in c]
    c.close()
    if got != [b"r%d" % i for i in range(len(futures))]:
        fail("read back %d records, not the %d sent in order" % (len(got), len(futures)))
    passed("%d records over %d s with 1.5-s sessions: every send succeeded; %d re-authentications counted by the "
           "broker; all read back in order" % (len(futures), SECONDS, reauths))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
