#!/usr/bin/env python3
"""aiokafka: SASL/PLAIN over TLS on a SASL_SSL listener (issue 16); the steps are in
aio_security.py, shared with security and security-ssl.

Own broker (lib/broker.py `sasl_ssl_broker()`: one SASL_SSL listener, PLAIN with users
alice and bob, server authentication only: the broker-wide `ssl.client.auth=required`
does not apply to SASL_SSL listeners, KIP-684). Clients use
`security_protocol="SASL_SSL"`, `ssl_context=create_ssl_context(cafile=<test CA>)`
(certificate and hostname verification always on; bootstrap localhost:<port>, then the
advertised 127.0.0.1), `sasl_mechanism="PLAIN"`, `sasl_plain_username`/`sasl_plain_password`.

1. alice: AIOKafkaAdminClient.create_topics (2 partitions), 20 records from an
   idempotent producer (record i to partition i % 2), read back with assign(); a group
   member (subscribe) reads them and commits {0: 6, 1: 4} with metadata;
   list_consumer_group_offsets reads the commit back.
2. alice with a wrong password: the producer's start() fails within 20 s naming
   SaslAuthenticationFailed (raised or logged, as in `security`).
3. an unknown user: the same.
4. alice's credentials, but a client that trusts only another CA (cafile the rogue CA):
   the client refuses the broker's certificate, start() fails.
5. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

import aio_helpers as ah
import aio_security as sec
import compat
from broker import SASL_USERS, sasl_ssl_broker
from compat import log, passed

own = sasl_ssl_broker().close_at_verdict().start()
log("own broker (SASL_SSL, PLAIN) on %s, data and certificates in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")
certs = own.certs


def sasl_ssl(user, password, ca=None):
    return {"bootstrap_servers": own.bootstrap_localhost, "security_protocol": "SASL_SSL",
            "ssl_context": create_ssl_context(cafile=ca or certs.ca_pem), "sasl_mechanism": "PLAIN",
            "sasl_plain_username": user, "sasl_plain_password": password}


ALICE = sasl_ssl("alice", SASL_USERS["alice"])


async def main():
    admin = AIOKafkaAdminClient(request_timeout_ms=30000, **ALICE)
    await ah.bounded(admin.start(), 30, "alice's admin start")
    await sec.alice_steps(ALICE, admin, TOPIC, GROUP)

    wrong = await sec.refused_login("wrong password", "alice", sasl_ssl("alice", "not-" + SASL_USERS["alice"]), TOPIC)
    unknown = await sec.refused_login("unknown user", "mallory", sasl_ssl("mallory", "mallory-secret"), TOPIC)
    untrusted = await sec.refused_connection("broker certificate not trusted", "alice",
                                             sasl_ssl("alice", SASL_USERS["alice"], ca=certs.rogue_ca_pem), TOPIC, own)

    compat.check_security_log(await sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    await ah.bounded(admin.close(), 30, "admin close")
    passed("alice (SASL over TLS): CreateTopics, %d records produced and read back, group commit %s read back; "
           "wrong password: %s; unknown user: %s; client trusting another CA: %s; nothing of theirs in the topic"
           % (compat.SECURITY_COUNT, compat.SECURITY_COMMIT, wrong, unknown, untrusted))


ah.run(main())
