#!/usr/bin/env bash
# kcat balanced consumer: kcat -G with a '^prefix-(a|b|c)$' subscription (librdkafka matches client-side): gets a and b, not other, then picks up c created later.
# kcat_group.py drives the kcat processes and follows their rebalance notices;
# topics are created with kcat_admin.py (kcat has no CreateTopics).
source "$(dirname "$0")/common.sh"
"$PY" "$KCAT_DIR/kcat_group.py" regex
