#!/usr/bin/env python3
"""confluent-kafka (librdkafka): SASL/SCRAM-SHA-512 and SCRAM-SHA-256 on a SASL_SSL
listener (issue 16: "SASL_SSL SCRAM-SHA-512"; the other clients run the scenario on
SASL_PLAINTEXT); the steps are in ck_security.py, shared with the other security
scenarios.

The scenario starts its own broker (lib/broker.py `scram_broker(tls=True)`: one SASL_SSL
listener with the certificates of lib/certs.py, `sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512`, PLAIN for the
user `admin` only). The credentials live in the broker's metadata: `strom user scram set`
(as admin, `--command-config`) gives alice a SCRAM-SHA-512 and bob a SCRAM-SHA-256
credential before any client runs, and `strom user scram list` must show exactly them.
Clients use `security.protocol=SASL_SSL`, `ssl.ca.location` (the test CA),
`sasl.mechanisms=SCRAM-SHA-512` (or -256), `sasl.username`/`sasl.password`.

1. alice (SCRAM-SHA-512): CreateTopics (2 partitions), 20 records (record i to partition
   i % 2), read back with assign(); a group member (subscribe) reads them, commits
   {0: 6, 1: 4} with metadata, and a second consumer of the group reads the commit back
   (committed()). bob (SCRAM-SHA-256) gets the topic's metadata.
2. alice with a wrong password: the producer's error callback reports _AUTHENTICATION
   within 20 s, list_topics fails, none of its records is delivered; the broker logs the
   refusal ("wrong client proof").
3. an unknown user (SCRAM-SHA-512): the same (broker: no SCRAM credential for the user).
4. alice's password with SCRAM-SHA-256, for which she has no credential: the same.
5. `strom user scram delete bob --mechanism SCRAM-SHA-256` (list: alice only): bob can no
   longer log in (refused as in 2, broker: no SCRAM credential for "bob").
6. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from confluent_kafka.admin import AdminClient

import ck_helpers as ck
import ck_security as sec
import compat
from broker import SCRAM_USERS, create_scram_users, delete_scram_user, scram_broker
from compat import fail, log, passed

own = scram_broker(tls=True).close_at_verdict().start()
log("own broker (SASL_SSL, PLAIN for admin, SCRAM-SHA-256/512) on %s, data in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")


def scram(user, password, mechanism):
    return {"bootstrap.servers": own.bootstrap, "security.protocol": "SASL_SSL", "ssl.ca.location": own.certs.ca_pem,
            "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password}


def as_user(user):
    mechanism, password = SCRAM_USERS[user]
    return scram(user, password, mechanism)


ALICE = as_user("alice")


def main():
    created = create_scram_users(own)
    sec.alice_steps(ALICE, TOPIC, GROUP)
    bob = AdminClient(as_user("bob"))
    ck.wait_partitions(bob, TOPIC, compat.SECURITY_PARTITIONS)
    log("bob (SCRAM-SHA-256) sees %s" % TOPIC)

    alice_mech, alice_pw = SCRAM_USERS["alice"]
    wrong = sec.refused_login("wrong password", "alice", scram("alice", "not-" + alice_pw, alice_mech), TOPIC,
                              own, "wrong client proof")
    unknown = sec.refused_login("unknown user", "mallory", scram("mallory", "mallory-secret", alice_mech), TOPIC,
                                own, 'no SCRAM credential for user "mallory"')
    other = sec.refused_login("alice on SCRAM-SHA-256 (no credential)", "alice",
                              scram("alice", alice_pw, "SCRAM-SHA-256"), TOPIC, own, 'no SCRAM credential for user "alice"')
    delete_scram_user(own, "bob")
    deleted = sec.refused_login("bob after strom user scram delete", "bob", as_user("bob"), TOPIC,
                                own, 'no SCRAM credential for user "bob"')

    compat.check_security_log(sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    passed("%s; alice (SCRAM-SHA-512): CreateTopics, %d records produced and read back, group commit %s read back; "
           "bob (SCRAM-SHA-256) gets metadata; wrong password: %s; unknown user: %s; alice on SCRAM-SHA-256: %s; "
           "bob after strom user scram delete: %s; nothing of theirs in the topic"
           % (created, compat.SECURITY_COUNT, compat.SECURITY_COMMIT, wrong, unknown, other, deleted))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
