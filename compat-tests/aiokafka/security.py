#!/usr/bin/env python3
"""aiokafka: SASL/PLAIN on a SASL_PLAINTEXT listener (issue 16); the steps are in
aio_security.py, shared with security-ssl and security-sasl-ssl.

Own broker (lib/broker.py `sasl_plain_broker()`: one SASL_PLAINTEXT listener, PLAIN,
users alice and bob). Clients use `security_protocol="SASL_PLAINTEXT"`,
`sasl_mechanism="PLAIN"`, `sasl_plain_username`/`sasl_plain_password`.

1. alice: AIOKafkaAdminClient.create_topics (2 partitions), 20 records from an
   idempotent producer (record i to partition i % 2), read back with assign(); a group
   member (subscribe) reads them and commits {0: 6, 1: 4} with metadata;
   list_consumer_group_offsets reads the commit back.
2. alice with a wrong password: the producer's start() fails within 20 s
   (KafkaConnectionError "Unable to bootstrap", with the bootstrap connection's
   SaslAuthenticationFailed, error 58, logged as its cause); none of its records reaches the
   topic.
3. an unknown user: the same.
4. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from aiokafka.admin import AIOKafkaAdminClient

import aio_helpers as ah
import aio_security as sec
import compat
from broker import SASL_USERS, sasl_plain_broker
from compat import log, passed

own = sasl_plain_broker().close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, PLAIN) on %s, data in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")


def sasl(user, password):
    return {"bootstrap_servers": own.bootstrap, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": user, "sasl_plain_password": password}


ALICE = sasl("alice", SASL_USERS["alice"])


async def main():
    admin = AIOKafkaAdminClient(request_timeout_ms=30000, **ALICE)
    await ah.bounded(admin.start(), 30, "alice's admin start")
    await sec.alice_steps(ALICE, admin, TOPIC, GROUP)

    wrong = await sec.refused_login("wrong password", "alice", sasl("alice", "not-" + SASL_USERS["alice"]), TOPIC)
    unknown = await sec.refused_login("unknown user", "mallory", sasl("mallory", "mallory-secret"), TOPIC)

    compat.check_security_log(await sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    await ah.bounded(admin.close(), 30, "admin close")
    passed("alice: CreateTopics, %d records produced and read back, group commit %s read back; "
           "wrong password: %s; unknown user: %s; nothing of theirs in the topic"
           % (compat.SECURITY_COUNT, compat.SECURITY_COMMIT, wrong, unknown))


ah.run(main())
