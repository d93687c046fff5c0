#!/usr/bin/env bash
# kcat balanced consumer: a kcat -G member reads 60 of 100 records (-c 60, offsets committed on close); the broker restarts; a new member resumes at 60 and reads exactly 60..99.
# kcat_group.py drives the kcat processes and follows their rebalance notices;
# topics are created with kcat_admin.py (kcat has no CreateTopics).
source "$(dirname "$0")/common.sh"
"$PY" "$KCAT_DIR/kcat_group.py" resume
