#!/usr/bin/env python3
"""confluent-kafka (librdkafka): SASL/PLAIN over TLS on a SASL_SSL listener (issue 16); the
steps are in ck_security.py, shared with security and security-ssl.

The scenario starts its own broker (lib/broker.py `sasl_ssl_broker()`: one SASL_SSL
listener, its PEM keystore as `listener.name.sasl_ssl.ssl.keystore.location`, PLAIN with
users alice and bob; server authentication only: the broker-wide
`ssl.client.auth=required` does not apply to SASL_SSL listeners, KIP-684). Clients use
`security.protocol=SASL_SSL`, `ssl.ca.location` (the test CA), hostname verification on
(`ssl.endpoint.identification.algorithm=https`; bootstrap localhost:<port>, then the
advertised 127.0.0.1), `sasl.mechanisms=PLAIN`, `sasl.username`/`sasl.password`, no
client certificate.

1. alice: CreateTopics (2 partitions), 20 records (record i to partition i % 2), read
   back with assign(); a group member (subscribe) reads them, commits {0: 6, 1: 4} with
   metadata, and a second consumer of the group reads the commit back (committed()).
   bob, the second user, gets the topic's metadata.
2. alice with a wrong password: the producer's error callback reports _AUTHENTICATION
   within 20 s, list_topics fails, none of its records is delivered.
3. an unknown user: the same.
4. alice's credentials, but a client that trusts only another CA (ssl.ca.location the
   rogue CA): the client refuses the broker's certificate; no metadata, nothing delivered.
5. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from confluent_kafka.admin import AdminClient

import ck_helpers as ck
import ck_security as sec
import compat
from broker import SASL_USERS, sasl_ssl_broker
from compat import fail, log, passed

own = sasl_ssl_broker().close_at_verdict().start()
log("own broker (SASL_SSL, PLAIN) on %s, data and certificates in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")
certs = own.certs


def sasl_ssl(user, password, ca=None):
    return {"bootstrap.servers": own.bootstrap_localhost, "security.protocol": "SASL_SSL",
            "ssl.ca.location": ca or certs.ca_pem, "ssl.endpoint.identification.algorithm": "https",
            "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": password}


ALICE = sasl_ssl("alice", SASL_USERS["alice"])


def main():
    sec.alice_steps(ALICE, TOPIC, GROUP)
    bob = AdminClient(sasl_ssl("bob", SASL_USERS["bob"]))
    ck.wait_partitions(bob, TOPIC, compat.SECURITY_PARTITIONS)
    log("bob sees %s" % TOPIC)

    wrong = sec.refused_login("wrong password", "alice", sasl_ssl("alice", "not-" + SASL_USERS["alice"]), TOPIC)
    unknown = sec.refused_login("unknown user", "mallory", sasl_ssl("mallory", "mallory-secret"), TOPIC)
    untrusted = sec.refused_connection("broker certificate not trusted", "alice",
                                       sasl_ssl("alice", SASL_USERS["alice"], ca=certs.rogue_ca_pem), TOPIC, own)

    compat.check_security_log(sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    passed("alice (SASL over TLS): CreateTopics, %d records produced and read back, group commit %s read back; "
           "bob gets metadata; wrong password: %s; unknown user: %s; client trusting another CA: %s; "
           "nothing of theirs in the topic"
           % (compat.SECURITY_COUNT, compat.SECURITY_COMMIT, wrong, unknown, untrusted))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
