#!/usr/bin/env python3
"""aiokafka: SASL/SCRAM-SHA-512 and SCRAM-SHA-256 on a SASL_PLAINTEXT listener (issue 16);
the steps are in aio_security.py, shared with the other security scenarios.

Own broker (lib/broker.py `scram_broker()`: one SASL_PLAINTEXT listener, PLAIN for the
user `admin` only, SCRAM-SHA-256 and SCRAM-SHA-512); `strom user scram set` (as admin)
gives alice a SCRAM-SHA-512 and bob a SCRAM-SHA-256 credential before any client runs.
Clients use `security_protocol="SASL_PLAINTEXT"`, `sasl_mechanism="SCRAM-SHA-512"` (or
-256), `sasl_plain_username`/`sasl_plain_password`.

1. alice (SCRAM-SHA-512): AIOKafkaAdminClient.create_topics (2 partitions), 20 records
   from an idempotent producer (record i to partition i % 2), read back with assign(); a
   group member (subscribe) reads them and commits {0: 6, 1: 4} with metadata;
   list_consumer_group_offsets reads the commit back. bob (SCRAM-SHA-256) gets the
   topic's metadata (AIOKafkaAdminClient.describe_topics).
2. alice with a wrong password: the producer's start() fails within 20 s
   (KafkaConnectionError "Unable to bootstrap", SaslAuthenticationFailed logged); none of
   its records reaches the topic; the broker logs the refusal ("wrong client proof").
3. an unknown user: the same (broker: no SCRAM credential for the user).
4. `strom user scram delete bob --mechanism SCRAM-SHA-256`: bob can no longer log in.
5. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from aiokafka.admin import AIOKafkaAdminClient

import aio_helpers as ah
import aio_security as sec
import compat
from broker import SCRAM_USERS, create_scram_users, delete_scram_user, scram_broker
from compat import log, passed

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


async def main():
    created = create_scram_users(own)
    admin = AIOKafkaAdminClient(request_timeout_ms=30000, **ALICE)
    await ah.bounded(admin.start(), 30, "alice's admin start")
    await sec.alice_steps(ALICE, admin, TOPIC, GROUP)
    bob = AIOKafkaAdminClient(request_timeout_ms=30000, **as_user("bob"))
    await ah.bounded(bob.start(), 30, "bob's admin start")
    await ah.wait_partitions(bob, TOPIC, compat.SECURITY_PARTITIONS)
    await ah.bounded(bob.close(), 30, "bob's admin close")
    log("bob (SCRAM-SHA-256) sees %s" % TOPIC)

    alice_mech, alice_pw = SCRAM_USERS["alice"]
    wrong = await sec.refused_login("wrong password", "alice", scram("alice", "not-" + alice_pw, alice_mech), TOPIC,
                                    own, "wrong client proof")
    unknown = await sec.refused_login("unknown user", "mallory", scram("mallory", "mallory-secret", alice_mech), TOPIC,
                                      own, 'no SCRAM credential for user "mallory"')
    delete_scram_user(own, "bob")
    deleted = await sec.refused_login("bob after strom user scram delete", "bob", as_user("bob"), TOPIC,
                                      own, 'no SCRAM credential for user "bob"')

    compat.check_security_log(await sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    await ah.bounded(admin.close(), 30, "admin close")
    passed("%s; alice (SCRAM-SHA-512): CreateTopics, %d records produced and read back, group commit %s read back; "
           "bob (SCRAM-SHA-256) gets metadata; wrong password: %s; unknown user: %s; "
           "bob after strom user scram delete: %s; nothing of theirs in the topic"
           % (created, compat.SECURITY_COUNT, compat.SECURITY_COMMIT, wrong, unknown, deleted))


ah.run(main())
