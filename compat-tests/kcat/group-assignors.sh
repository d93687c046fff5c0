#!/usr/bin/env bash
# kcat balanced consumer: range, roundrobin and cooperative-sticky (-X partition.assignment.strategy): a first member takes 4 partitions, a second joins, they end 2/2, never overlapping.
# kcat_group.py drives the kcat processes and follows their rebalance notices;
# topics are created with kcat_admin.py (kcat has no CreateTopics).
source "$(dirname "$0")/common.sh"
"$PY" "$KCAT_DIR/kcat_group.py" assignors
