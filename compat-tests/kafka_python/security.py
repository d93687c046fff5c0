#!/usr/bin/env python3
"""kafka-python: SASL/PLAIN on a SASL_PLAINTEXT listener (issue 16); the steps are in
kp_security.py, shared with security-ssl and security-sasl-ssl.

Own broker (lib/broker.py `sasl_plain_broker()`: one SASL_PLAINTEXT listener, PLAIN,
users alice and bob). Clients use `security_protocol="SASL_PLAINTEXT"`,
`sasl_mechanism="PLAIN"`, `sasl_plain_username`/`sasl_plain_password`.

1. alice: KafkaAdminClient.create_topics (2 partitions), 20 records from a KafkaProducer
   (record i to partition i % 2), read back with assign(); a group member (subscribe)
   reads them and commits {0: 6, 1: 4} with metadata; a second consumer of the group
   reads the commit back (committed(metadata=True)).
2. alice with a wrong password: creating a producer and sending fails within 20 s
   with SaslAuthenticationFailedError, raised or (kafka-python 3.0.12: its bootstrap
   retries a refused login until bootstrap_timeout_ms, here 10 s, then raises
   KafkaTimeoutError "Unable to bootstrap") logged as the cause of the failed bootstrap
   connections; none of its records is delivered.
3. an unknown user: the same.
4. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

import compat
import kp_security as sec
from broker import SASL_USERS, sasl_plain_broker
from compat import fail, log, passed

own = sasl_plain_broker().close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, PLAIN) on %s, data in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")


def sasl(user, password):
    return {"bootstrap_servers": own.bootstrap, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": user, "sasl_plain_password": password}


ALICE = sasl("alice", SASL_USERS["alice"])


def main():
    sec.alice_steps(ALICE, TOPIC, GROUP)

    wrong = sec.refused_login("wrong password", "alice", sasl("alice", "not-" + SASL_USERS["alice"]), TOPIC)
    unknown = sec.refused_login("unknown user", "mallory", sasl("mallory", "mallory-secret"), TOPIC)

    compat.check_security_log(sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    passed("alice: CreateTopics, %d records produced and read back, group commit %s read back; "
           "wrong password: %s; unknown user: %s; nothing of theirs in the topic"
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
