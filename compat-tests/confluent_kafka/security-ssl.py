#!/usr/bin/env python3
"""confluent-kafka (librdkafka): mutual TLS on an SSL listener (issue 16); the steps are
in ck_security.py, shared with security and security-sasl-ssl.

The scenario starts its own broker (lib/broker.py `ssl_broker()`: one SSL listener,
PEM keystore and truststore from lib/certs.py, `ssl.client.auth=required`). Clients use
`security.protocol=SSL`, `ssl.ca.location` (the test CA), hostname verification on
(`ssl.endpoint.identification.algorithm=https`; bootstrap localhost:<port>, then the
advertised 127.0.0.1), and alice's certificate in `ssl.certificate.location`/
`ssl.key.location`.

1. alice: CreateTopics (2 partitions), 20 records (record i to partition i % 2), read
   back with assign(); a group member (subscribe) reads them, commits {0: 6, 1: 4} with
   metadata, and a second consumer of the group reads the commit back (committed()).
2. a client without a certificate: an error within 20 s, list_topics fails, none of its
   records is delivered; the broker logs "TLS handshake failed".
3. a client with mallory's certificate (signed by a CA the broker does not trust): the same.
4. a PLAINTEXT client on the SSL port: the same.
5. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

import ck_security as sec
import compat
from broker import ssl_broker
from compat import fail, log, passed

own = ssl_broker().close_at_verdict().start()
log("own broker (SSL, ssl.client.auth=required) on %s, data and certificates in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")
certs = own.certs


def tls(cert=None, key=None):
    cfg = {"bootstrap.servers": own.bootstrap_localhost, "security.protocol": "SSL", "ssl.ca.location": certs.ca_pem,
           "ssl.endpoint.identification.algorithm": "https"}
    if cert is not None:
        cfg.update({"ssl.certificate.location": cert, "ssl.key.location": key})
    return cfg


ALICE = tls(certs.alice_crt, certs.alice_key)


def main():
    sec.alice_steps(ALICE, TOPIC, GROUP)

    nocert = sec.refused_connection("no client certificate", "anonymous", tls(), TOPIC, own)
    rogue = sec.refused_connection("certificate of an untrusted CA", "mallory",
                                   tls(certs.mallory_crt, certs.mallory_key), TOPIC, own)
    plain = sec.refused_connection("PLAINTEXT client on the SSL port", "plaintext",
                                   {"bootstrap.servers": own.bootstrap_localhost, "security.protocol": "PLAINTEXT"},
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
