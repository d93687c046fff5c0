#!/usr/bin/env python3
"""aiokafka: SASL/OAUTHBEARER with unsecured JWTs on a SASL_PLAINTEXT listener (issue 16);
the steps are in aio_security.py, shared with the other security scenarios.

Own broker (lib/broker.py `oauth_broker()`: one SASL_PLAINTEXT listener, OAUTHBEARER,
Kafka's default unsecured validator with `unsecuredValidatorRequiredScope="kafka"`).
Clients use `security_protocol="SASL_PLAINTEXT"`, `sasl_mechanism="OAUTHBEARER"` and
`sasl_oauth_token_provider`, an aiokafka.abc.AbstractTokenProvider whose async token()
returns a token of lib/broker.py `unsecured_jwt()` (aiokafka makes no token itself).

1. alice: AIOKafkaAdminClient.create_topics (2 partitions), 20 records from an
   idempotent producer (record i to partition i % 2), read back with assign(); a group
   member (subscribe) reads them and commits {0: 6, 1: 4} with metadata;
   list_consumer_group_offsets reads the commit back.
2. an expired token (exp 10 minutes ago): the producer's start() fails within 20 s
   (KafkaConnectionError "Unable to bootstrap", SaslAuthenticationFailed logged); none of
   its records reaches the topic; the broker logs "the token has expired".
3. a token without the scope `kafka`: the same (broker: "the token lacks the required
   scope kafka").
4. alice reads the topic again: exactly her 20 records at offsets 0..9 per partition.
"""

from aiokafka.abc import AbstractTokenProvider
from aiokafka.admin import AIOKafkaAdminClient

import aio_helpers as ah
import aio_security as sec
import compat
from broker import OAUTH_SCOPE, oauth_broker, unsecured_jwt
from compat import log, passed

own = oauth_broker().close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, OAUTHBEARER, required scope %s) on %s, data in %s"
    % (OAUTH_SCOPE, own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")


class Tokens(AbstractTokenProvider):
    """An unsecured JWT for `sub`, made anew for every login."""

    def __init__(self, sub, **claims):
        self.sub, self.claims = sub, claims

    async def token(self):
        return unsecured_jwt(self.sub, **self.claims)


def oauth(sub, **claims):
    return {"bootstrap_servers": own.bootstrap, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
            "sasl_oauth_token_provider": Tokens(sub, **claims)}


ALICE = oauth("alice")


async def main():
    admin = AIOKafkaAdminClient(request_timeout_ms=30000, **ALICE)
    await ah.bounded(admin.start(), 30, "alice's admin start")
    await sec.alice_steps(ALICE, admin, TOPIC, GROUP)

    expired = await sec.refused_login("expired token", "alice", oauth("alice", lifetime=-600), TOPIC,
                                      own, "the token has expired")
    noscope = await sec.refused_login("token without the scope %s" % OAUTH_SCOPE, "mallory",
                                      oauth("mallory", scope=None), TOPIC,
                                      own, "the token lacks the required scope %s" % OAUTH_SCOPE)

    compat.check_security_log(await sec.read_topic(ALICE, TOPIC, "alice's read after the refused clients"),
                              "alice's read after the refused clients")
    await ah.bounded(admin.close(), 30, "admin close")
    passed("alice (unsecured JWT from sasl_oauth_token_provider): CreateTopics, %d records produced and read back, "
           "group commit %s read back; expired token: %s; token without the scope: %s; nothing of theirs in the topic"
           % (compat.SECURITY_COUNT, compat.SECURITY_COMMIT, expired, noscope))


ah.run(main())
