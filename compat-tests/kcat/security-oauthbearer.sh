#!/usr/bin/env bash
# kcat (librdkafka 2.0.2) on a SASL_PLAINTEXT listener with OAUTHBEARER (issue 16): its own
# broker (lib/broker.py oauth_broker(): Kafka's unsecured validator, required scope kafka),
# -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=OAUTHBEARER -X
# enable.sasl.oauthbearer.unsecure.jwt=true -X sasl.oauthbearer.config="principal=alice
# scope=kafka" (librdkafka makes the unsecured JWT). alice produces 20 records to an
# auto-created topic, reads them back, a kcat -G member commits offset 6 and a second member
# resumes there; bob gets metadata; a token without the scope is refused (kcat -L and
# kcat -P), and nothing of it lands in the topic. kcat cannot send an expired token
# (librdkafka's builder makes unexpired tokens only). kcat_security.py drives kcat.
source "$(dirname "$0")/common.sh"
"$PY" "$KCAT_DIR/kcat_security.py" oauthbearer
