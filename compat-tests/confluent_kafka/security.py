#!/usr/bin/env python3
"""confluent-kafka (librdkafka): SASL/PLAIN on a SASL_PLAINTEXT listener (issue 16); the
steps are in ck_security.py, shared with security-ssl and security-sasl-ssl.

The scenario starts its own broker (lib/broker.py `sasl_plain_broker()`: one
SASL_PLAINTEXT listener, `sasl.enabled.mechanisms=PLAIN`, users alice and bob in
`listener.name.sasl_plaintext.plain.sasl.jaas.config`). Clients use
`security.protocol=SASL_PLAINTEXT`, `sasl.mechanisms=PLAIN`, `sasl.username`/`sasl.password`.

1. alice: CreateTopics (2 partitions), 20 records (record i to partition i % 2),
   read back with assign(); a group member (subscribe) reads them, commits
   {0: 6, 1: 4} with metadata, and a second consumer of the group reads the commit back
   (committed()). bob, the second user, gets the topic's metadata.
2. alice with a wrong password: the producer's error callback reports _AUTHENTICATION
   within 20 s, list_topics fails, none of its records is delivered.
3. an unknown user: the same.
4. a client without SASL (security.protocol=PLAINTEXT) gets no metadata (the broker
   closes a connection that sends anything but ApiVersions/SASL before logging in).
5. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

import ck_helpers as ck
import ck_security as sec
import compat
from broker import SASL_USERS, sasl_plain_broker
from compat import fail, log, passed

own = sasl_plain_broker().close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, PLAIN) on %s, data in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")
NPART = compat.SECURITY_PARTITIONS


def sasl(user, password, **extra):
    cfg = {"bootstrap.servers": own.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
           "sasl.username": user, "sasl.password": password}
    cfg.update(extra)
    return cfg


ALICE = sasl("alice", SASL_USERS["alice"])


def main():
    sec.alice_steps(ALICE, TOPIC, GROUP)
    bob = AdminClient(sasl("bob", SASL_USERS["bob"]))
    ck.wait_partitions(bob, TOPIC, NPART)
    log("bob sees %s" % TOPIC)

    wrong = sec.refused_login("wrong password", "alice", sasl("alice", "not-" + SASL_USERS["alice"]), TOPIC)
    unknown = sec.refused_login("unknown user", "mallory", sasl("mallory", "mallory-secret"), TOPIC)

    plain = Producer({"bootstrap.servers": own.bootstrap, "security.protocol": "PLAINTEXT",
                      "reconnect.backoff.ms": 500, "reconnect.backoff.max.ms": 2000})
    try:
        md = plain.list_topics(timeout=8)
        fail("a client without SASL got metadata: brokers %s, topics %s" % (md.brokers, sorted(md.topics)))
    except KafkaException as e:
        log("a client without SASL gets no metadata: %s" % e.args[0])

    compat.check_security_log(sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    passed("alice: CreateTopics, %d records produced and read back, group commit %s read back; bob gets metadata; "
           "wrong password: %s; unknown user: %s; no SASL: no metadata; nothing of theirs in the topic"
           % (compat.SECURITY_COUNT, compat.SECURITY_COMMIT, wrong, unknown))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
