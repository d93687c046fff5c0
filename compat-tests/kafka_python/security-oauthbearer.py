#!/usr/bin/env python3
"""kafka-python: SASL/OAUTHBEARER with unsecured JWTs on a SASL_PLAINTEXT listener (issue
16); the steps are in kp_security.py, shared with the other security scenarios.

Own broker (lib/broker.py `oauth_broker()`: one SASL_PLAINTEXT listener, OAUTHBEARER,
Kafka's default unsecured validator with `unsecuredValidatorRequiredScope="kafka"`).
Clients use `security_protocol="SASL_PLAINTEXT"`, `sasl_mechanism="OAUTHBEARER"` and
`sasl_oauth_token_provider`, a kafka.net.sasl.oauth.AbstractTokenProvider whose token()
returns a token of lib/broker.py `unsecured_jwt()` (kafka-python makes no token itself).

1. alice: KafkaAdminClient.create_topics (2 partitions), 20 records from a KafkaProducer
   (record i to partition i % 2), read back with assign(); a group member (subscribe)
   reads them and commits {0: 6, 1: 4} with metadata; a second consumer of the group reads
   the commit back (committed(metadata=True)).
2. an expired token (exp 10 minutes ago): creating a producer and sending fails within
   20 s with SaslAuthenticationFailedError, raised or logged (see kp_security.py); none of
   its records is delivered; the broker logs "the token has expired".
3. a token without the scope `kafka`: the same (broker: "the token lacks the required
   scope kafka").
4. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from kafka.net.sasl.oauth import AbstractTokenProvider

import compat
import kp_security as sec
from broker import OAUTH_SCOPE, oauth_broker, unsecured_jwt
from compat import fail, log, passed

own = oauth_broker().close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, OAUTHBEARER, required scope %s) on %s, data in %s"
    % (OAUTH_SCOPE, own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")


class Tokens(AbstractTokenProvider):
    """An unsecured JWT for `sub`, made anew for every login (kafka-python asks on each
    connection)."""

    def __init__(self, sub, **claims):
        super().__init__()
        self.sub, self.claims = sub, claims

    def token(self):
        return unsecured_jwt(self.sub, **self.claims)


def oauth(sub, **claims):
    return {"bootstrap_servers": own.bootstrap, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
            "sasl_oauth_token_provider": Tokens(sub, **claims)}


ALICE = oauth("alice")


def main():
    sec.alice_steps(ALICE, TOPIC, GROUP)
    expired = sec.refused_login("expired token", "alice", oauth("alice", lifetime=-600), TOPIC,
                                own, "the token has expired")
    noscope = sec.refused_login("token without the scope %s" % OAUTH_SCOPE, "mallory", oauth("mallory", scope=None),
                                TOPIC, own, "the token lacks the required scope %s" % OAUTH_SCOPE)

    compat.check_security_log(sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    passed("alice (unsecured JWT from sasl_oauth_token_provider): CreateTopics, %d records produced and read back, "
           "group commit %s read back; expired token: %s; token without the scope: %s; nothing of theirs in the topic"
           % (compat.SECURITY_COUNT, compat.SECURITY_COMMIT, expired, noscope))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
