#!/usr/bin/env bash
# kcat (librdkafka 2.0.2) on an SSL listener with ssl.client.auth=required (issue 16): its own
# broker (lib/broker.py ssl_broker(), certificates from lib/certs.py), -X security.protocol=SSL
# -X ssl.ca.location=<test CA> (hostname verification on), alice with -X
# ssl.certificate.location/ssl.key.location. alice produces 20 records to an auto-created
# topic, reads them back, a kcat -G member commits offset 6 and a second member resumes
# there; a client without a certificate, one with a certificate of an untrusted CA and a
# PLAINTEXT client get no metadata and deliver nothing (the broker logs "TLS handshake
# failed"). kcat_security.py (system python3) drives the kcat processes.
source "$(dirname "$0")/common.sh"
"$PY" "$KCAT_DIR/kcat_security.py" ssl
