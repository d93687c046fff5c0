#!/usr/bin/env python3
"""confluent-kafka (librdkafka): SASL/OAUTHBEARER with unsecured JWTs on a SASL_PLAINTEXT
listener (issue 16); the steps are in ck_security.py, shared with the other security
scenarios.

The scenario starts its own broker (lib/broker.py `oauth_broker()`: one SASL_PLAINTEXT
listener, `sasl.enabled.mechanisms=OAUTHBEARER`, Kafka's default unsecured validator with
`unsecuredValidatorRequiredScope="kafka"` in
`listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config`). Clients use
`security.protocol=SASL_PLAINTEXT`, `sasl.mechanisms=OAUTHBEARER` and either librdkafka's
own unsecured token (`enable.sasl.oauthbearer.unsecure.jwt=true`,
`sasl.oauthbearer.config="principal=alice scope=kafka"`) or an `oauth_cb` that returns a
token made by lib/broker.py `unsecured_jwt()`.

1. alice (librdkafka's token): CreateTopics (2 partitions), 20 records (record i to
   partition i % 2), read back with assign(); a group member (subscribe) reads them,
   commits {0: 6, 1: 4} with metadata, and a second consumer of the group reads the commit
   back (committed()). bob, with a token from oauth_cb, gets the topic's metadata.
2. an expired token from oauth_cb (exp 10 minutes ago; the callback tells librdkafka it
   is valid for an hour, since librdkafka refuses to use a token it knows has expired):
   the producer's error callback reports _AUTHENTICATION within 20 s, list_topics fails,
   none of its records is delivered; the broker logs "the token has expired".
3. librdkafka's token without the scope `kafka` (`principal=mallory`): the same (broker:
   "the token lacks the required scope kafka").
4. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

import time

from confluent_kafka.admin import AdminClient

import ck_helpers as ck
import ck_security as sec
import compat
from broker import OAUTH_SCOPE, oauth_broker, unsecured_jwt
from compat import fail, log, passed

own = oauth_broker().close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, OAUTHBEARER, required scope %s) on %s, data in %s"
    % (OAUTH_SCOPE, own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")
BASE = {"bootstrap.servers": own.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "OAUTHBEARER"}


def builtin(config):
    """librdkafka's own unsecured JWT (sasl.oauthbearer.config)."""
    return {**BASE, "enable.sasl.oauthbearer.unsecure.jwt": True, "sasl.oauthbearer.config": config}


def with_token(sub, lifetime=3600):
    """A token of unsecured_jwt() from oauth_cb; librdkafka is told it lasts an hour."""
    def oauth_cb(_config):
        return unsecured_jwt(sub, lifetime=lifetime), time.time() + 3600, sub, {}

    return {**BASE, "oauth_cb": oauth_cb}


ALICE = builtin("principal=alice scope=%s" % OAUTH_SCOPE)


def main():
    sec.alice_steps(ALICE, TOPIC, GROUP)
    bob = AdminClient(with_token("bob"))
    ck.wait_partitions(bob, TOPIC, compat.SECURITY_PARTITIONS)
    log("bob (token from oauth_cb) sees %s" % TOPIC)

    expired = sec.refused_login("expired token", "alice", with_token("alice", lifetime=-600), TOPIC,
                                own, "the token has expired")
    noscope = sec.refused_login("token without the scope %s" % OAUTH_SCOPE, "mallory", builtin("principal=mallory"),
                                TOPIC, own, "the token lacks the required scope %s" % OAUTH_SCOPE)

    compat.check_security_log(sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    passed("alice (librdkafka's unsecured JWT): CreateTopics, %d records produced and read back, group commit %s "
           "read back; bob (oauth_cb token) gets metadata; expired token: %s; token without the scope: %s; "
           "nothing of theirs in the topic" % (compat.SECURITY_COUNT, compat.SECURITY_COMMIT, expired, noscope))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
