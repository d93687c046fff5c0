#!/usr/bin/env bash
# kcat balanced consumer: three kcat -G members on a 6-partition topic get 2 partitions each; one leaves (SIGTERM) and the other two take over; every record delivered to its partition's owner.
# kcat_group.py drives the kcat processes and follows their rebalance notices;
# topics are created with kcat_admin.py (kcat has no CreateTopics).
source "$(dirname "$0")/common.sh"
"$PY" "$KCAT_DIR/kcat_group.py" rebalance
