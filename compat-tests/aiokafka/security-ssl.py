#!/usr/bin/env python3
"""aiokafka: mutual TLS on an SSL listener (issue 16); the steps are in aio_security.py,
shared with security and security-sasl-ssl.

Own broker (lib/broker.py `ssl_broker()`: one SSL listener, PEM keystore and truststore
from lib/certs.py, `ssl.client.auth=required`). Clients use `security_protocol="SSL"` and
`ssl_context=create_ssl_context(cafile=<test CA>, certfile=, keyfile=)` (aiokafka's
helper: certificate and hostname verification always on; bootstrap localhost:<port>, then
the advertised 127.0.0.1) with alice's certificate.

1. alice: AIOKafkaAdminClient.create_topics (2 partitions), 20 records from an
   idempotent producer (record i to partition i % 2), read back with assign(); a group
   member (subscribe) reads them and commits {0: 6, 1: 4} with metadata;
   list_consumer_group_offsets reads the commit back.
2. a client without a certificate: the producer's start() fails within 20 s
   (KafkaConnectionError "Unable to bootstrap"); the broker logs "TLS handshake failed".
3. a client with mallory's certificate (signed by a CA the broker does not trust): the same.
4. a PLAINTEXT client on the SSL port: the same.
5. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

import aio_helpers as ah
import aio_security as sec
import compat
from broker import ssl_broker
from compat import log, passed

own = ssl_broker().close_at_verdict().start()
log("own broker (SSL, ssl.client.auth=required) on %s, data and certificates in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")
certs = own.certs


def tls(cert=None, key=None):
    return {"bootstrap_servers": own.bootstrap_localhost, "security_protocol": "SSL",
            "ssl_context": create_ssl_context(cafile=certs.ca_pem, certfile=cert, keyfile=key)}


ALICE = tls(certs.alice_crt, certs.alice_key)


async def main():
    admin = AIOKafkaAdminClient(request_timeout_ms=30000, **ALICE)
    await ah.bounded(admin.start(), 30, "alice's admin start")
    await sec.alice_steps(ALICE, admin, TOPIC, GROUP)

    nocert = await sec.refused_connection("no client certificate", "anonymous", tls(), TOPIC, own)
    rogue = await sec.refused_connection("certificate of an untrusted CA", "mallory",
                                         tls(certs.mallory_crt, certs.mallory_key), TOPIC, own)
    plaintext = {"bootstrap_servers": own.bootstrap_localhost, "security_protocol": "PLAINTEXT"}
    plain = await sec.refused_connection("PLAINTEXT client on the SSL port", "plaintext", plaintext, TOPIC, own)

    compat.check_security_log(await sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    await ah.bounded(admin.close(), 30, "admin close")
    passed("alice (client certificate): CreateTopics, %d records produced and read back, group commit %s read back; "
           "no certificate: %s; untrusted CA: %s; PLAINTEXT: %s; nothing of theirs in the topic"
           % (compat.SECURITY_COUNT, compat.SECURITY_COMMIT, nocert, rogue, plain))


ah.run(main())
