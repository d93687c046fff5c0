#!/usr/bin/env python3
"""kafka-python: SASL/PLAIN over TLS on a SASL_SSL listener (issue 16); the steps are in
kp_security.py, shared with security and security-ssl.

Own broker (lib/broker.py `sasl_ssl_broker()`: one SASL_SSL listener, PLAIN with users
alice and bob, server authentication only: the broker-wide `ssl.client.auth=required`
does not apply to SASL_SSL listeners, KIP-684). Clients use
`security_protocol="SASL_SSL"`, `ssl_cafile` (the test CA), `ssl_check_hostname=True`
(bootstrap localhost:<port>, then the advertised 127.0.0.1), `sasl_mechanism="PLAIN"`,
`sasl_plain_username`/`sasl_plain_password`, no client certificate.

1. alice: KafkaAdminClient.create_topics (2 partitions), 20 records from a KafkaProducer
   (record i to partition i % 2), read back with assign(); a group member (subscribe)
   reads them and commits {0: 6, 1: 4} with metadata; a second consumer of the group
   reads the commit back (committed(metadata=True)).
2. alice with a wrong password: creating a producer and sending fails within 20 s naming
   SaslAuthenticationFailedError (raised or logged, as in `security`); nothing delivered.
3. an unknown user: the same.
4. alice's credentials, but a client that trusts only another CA (ssl_cafile the rogue
   CA): the client refuses the broker's certificate; nothing delivered.
5. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

import compat
import kp_security as sec
from broker import SASL_USERS, sasl_ssl_broker
from compat import fail, log, passed

own = sasl_ssl_broker().close_at_verdict().start()
log("own broker (SASL_SSL, PLAIN) on %s, data and certificates in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")
certs = own.certs


def sasl_ssl(user, password, ca=None):
    return {"bootstrap_servers": own.bootstrap_localhost, "security_protocol": "SASL_SSL",
            "ssl_cafile": ca or certs.ca_pem, "ssl_check_hostname": True, "sasl_mechanism": "PLAIN",
            "sasl_plain_username": user, "sasl_plain_password": password}


ALICE = sasl_ssl("alice", SASL_USERS["alice"])


def main():
    sec.alice_steps(ALICE, TOPIC, GROUP)

    wrong = sec.refused_login("wrong password", "alice", sasl_ssl("alice", "not-" + SASL_USERS["alice"]), TOPIC)
    unknown = sec.refused_login("unknown user", "mallory", sasl_ssl("mallory", "mallory-secret"), TOPIC)
    untrusted = sec.refused_connection("broker certificate not trusted", "alice",
                                       sasl_ssl("alice", SASL_USERS["alice"], ca=certs.rogue_ca_pem), TOPIC, own)

    compat.check_security_log(sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    passed("alice (SASL over TLS): CreateTopics, %d records produced and read back, group commit %s read back; "
           "wrong password: %s; unknown user: %s; client trusting another CA: %s; nothing of theirs in the topic"
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
