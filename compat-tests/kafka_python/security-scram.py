#!/usr/bin/env python3
"""kafka-python: SASL/SCRAM-SHA-512 and SCRAM-SHA-256 on a SASL_PLAINTEXT listener (issue
16); the steps are in kp_security.py, shared with the other security scenarios.

Own broker (lib/broker.py `scram_broker()`: one SASL_PLAINTEXT listener, PLAIN for the
user `admin` only, SCRAM-SHA-256 and SCRAM-SHA-512); `strom user scram set` (as admin)
gives alice a SCRAM-SHA-512 and bob a SCRAM-SHA-256 credential before any client runs.
Clients use `security_protocol="SASL_PLAINTEXT"`, `sasl_mechanism="SCRAM-SHA-512"` (or
-256), `sasl_plain_username`/`sasl_plain_password`.

1. alice (SCRAM-SHA-512): KafkaAdminClient.create_topics (2 partitions), 20 records from
   a KafkaProducer (record i to partition i % 2), read back with assign(); a group member
   (subscribe) reads them and commits {0: 6, 1: 4} with metadata; a second consumer of the
   group reads the commit back (committed(metadata=True)). bob (SCRAM-SHA-256) gets the
   topic's metadata (KafkaAdminClient.describe_topics).
2. alice with a wrong password: creating a producer and sending fails within 20 s with
   SaslAuthenticationFailedError, raised or logged as the cause of the failed bootstrap
   connections (see kp_security.py); none of its records is delivered; the broker logs
   the refusal ("wrong client proof").
3. an unknown user: the same (broker: no SCRAM credential for the user).
4. `strom user scram delete bob --mechanism SCRAM-SHA-256`: bob can no longer log in.
5. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from kafka.admin import KafkaAdminClient

import compat
import kp_helpers as kp
import kp_security as sec
from broker import SCRAM_USERS, create_scram_users, delete_scram_user, scram_broker
from compat import fail, log, passed

own = scram_broker().close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, PLAIN for admin, SCRAM-SHA-256/512) on %s, data in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")


def scram(user, password, mechanism):
    return {"bootstrap_servers": own.bootstrap, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
            "sasl_plain_username": user, "sasl_plain_password": password}


def as_user(user):
    mechanism, password = SCRAM_USERS[user]
    return scram(user, password, mechanism)


ALICE = as_user("alice")


def main():
    created = create_scram_users(own)
    sec.alice_steps(ALICE, TOPIC, GROUP)
    bob = KafkaAdminClient(request_timeout_ms=30000, **as_user("bob"))
    kp.wait_partitions(TOPIC, compat.SECURITY_PARTITIONS, admin_client=bob)
    bob.close()
    log("bob (SCRAM-SHA-256) sees %s" % TOPIC)

    alice_mech, alice_pw = SCRAM_USERS["alice"]
    wrong = sec.refused_login("wrong password", "alice", scram("alice", "not-" + alice_pw, alice_mech), TOPIC,
                              own, "wrong client proof")
    unknown = sec.refused_login("unknown user", "mallory", scram("mallory", "mallory-secret", alice_mech), TOPIC,
                                own, 'no SCRAM credential for user "mallory"')
    delete_scram_user(own, "bob")
    deleted = sec.refused_login("bob after strom user scram delete", "bob", as_user("bob"), TOPIC,
                                own, 'no SCRAM credential for user "bob"')

    compat.check_security_log(sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    passed("%s; alice (SCRAM-SHA-512): CreateTopics, %d records produced and read back, group commit %s read back; "
           "bob (SCRAM-SHA-256) gets metadata; wrong password: %s; unknown user: %s; "
           "bob after strom user scram delete: %s; nothing of theirs in the topic"
           % (created, compat.SECURITY_COUNT, compat.SECURITY_COMMIT, wrong, unknown, deleted))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
