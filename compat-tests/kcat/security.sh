#!/usr/bin/env bash
# kcat (librdkafka 2.0.2) on a SASL_PLAINTEXT listener with PLAIN (issue 16): its own broker
# (lib/broker.py sasl_plain_broker()), -X security.protocol=SASL_PLAINTEXT
# -X sasl.mechanisms=PLAIN -X sasl.username/sasl.password. alice produces 20 records to an
# auto-created topic, reads them back, a kcat -G member commits offset 6 (-c 6, committed
# on close) and a second member resumes there; a wrong password and an unknown user get an
# authentication error from kcat -L and kcat -P, and nothing of theirs lands in the topic.
# kcat_security.py (system python3) drives the kcat processes.
source "$(dirname "$0")/common.sh"
"$PY" "$KCAT_DIR/kcat_security.py" sasl_plaintext
