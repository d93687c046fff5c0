#!/usr/bin/env bash
# kcat (librdkafka 2.0.2) on a SASL_PLAINTEXT listener with SCRAM-SHA-512 and SCRAM-SHA-256
# (issue 16): its own broker (lib/broker.py scram_broker()); `strom user scram set` gives
# alice a SCRAM-SHA-512 and bob a SCRAM-SHA-256 credential first. -X
# security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-512 (bob: -256) -X
# sasl.username/sasl.password. alice produces 20 records to an auto-created topic, reads
# them back, a kcat -G member commits offset 6 and a second member resumes there; bob gets
# metadata; a wrong password, an unknown user, alice on SCRAM-SHA-256 and bob after `strom
# user scram delete` are refused (kcat -L and kcat -P), and nothing of theirs lands in the
# topic. kcat_security.py (system python3) drives the kcat processes. With librdkafka <
# 2.6.1 (Debian's kcat: 2.0.2) the cell is unsupported: that librdkafka repeats the client
# nonce in SCRAM's client-final message (confluentinc/librdkafka#4895), which Strom, as
# Kafka 4, refuses (RFC 5802); the script checks that this is why alice's login fails.
source "$(dirname "$0")/common.sh"
"$PY" "$KCAT_DIR/kcat_security.py" scram
