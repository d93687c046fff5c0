#!/usr/bin/env python3
"""kafka-python: mutual TLS on an SSL listener (issue 16); the steps are in
kp_security.py, shared with security and security-sasl-ssl.

Own broker (lib/broker.py `ssl_broker()`: one SSL listener, PEM keystore and truststore
from lib/certs.py, `ssl.client.auth=required`). Clients use `security_protocol="SSL"`,
`ssl_cafile` (the test CA), `ssl_check_hostname=True` (bootstrap localhost:<port>, then
the advertised 127.0.0.1), and alice's certificate in `ssl_certfile`/`ssl_keyfile`.

1. alice: KafkaAdminClient.create_topics (2 partitions), 20 records from a KafkaProducer
   (record i to partition i % 2), read back with assign(); a group member (subscribe)
   reads them and commits {0: 6, 1: 4} with metadata; a second consumer of the group
   reads the commit back (committed(metadata=True)).
2. a client without a certificate: creating a producer and sending fails within 20 s
   (kafka-python retries the refused connections until bootstrap_timeout_ms, 10 s, then
   raises KafkaTimeoutError), nothing is delivered; the broker logs "TLS handshake failed".
3. a client with mallory's certificate (signed by a CA the broker does not trust): the same.
4. a PLAINTEXT client on the SSL port: the same.
5. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

import compat
import kp_security as sec
from broker import ssl_broker
from compat import fail, log, passed

own = ssl_broker().close_at_verdict().start()
log("own broker (SSL, ssl.client.auth=required) on %s, data and certificates in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")
certs = own.certs


def tls(cert=None, key=None):
    cfg = {"bootstrap_servers": own.bootstrap_localhost, "security_protocol": "SSL", "ssl_cafile": certs.ca_pem,
           "ssl_check_hostname": True}
    if cert is not None:
        cfg.update({"ssl_certfile": cert, "ssl_keyfile": key})
    return cfg


ALICE = tls(certs.alice_crt, certs.alice_key)


def main():
    sec.alice_steps(ALICE, TOPIC, GROUP)

    nocert = sec.refused_connection("no client certificate", "anonymous", tls(), TOPIC, own)
    rogue = sec.refused_connection("certificate of an untrusted CA", "mallory",
                                   tls(certs.mallory_crt, certs.mallory_key), TOPIC, own)
    plain = sec.refused_connection("PLAINTEXT client on the SSL port", "plaintext",
                                   {"bootstrap_servers": own.bootstrap_localhost, "security_protocol": "PLAINTEXT"},
                                   TOPIC, own)

    compat.check_security_log(sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    passed("alice (client certificate): CreateTopics, %d records produced and read back, group commit %s read back; "
           "no certificate: %s; untrusted CA: %s; PLAINTEXT: %s; nothing of theirs in the topic"
           % (compat.SECURITY_COUNT, compat.SECURITY_COMMIT, nocert, rogue, plain))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
