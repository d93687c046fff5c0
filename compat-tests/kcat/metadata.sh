#!/usr/bin/env bash
# kcat: a topic auto-created by producing one message is listed by
# `kcat -L` (per-topic and all-topics) with 1 partition and a leader.
# (kcat cannot create topics with N partitions.)
source "$(dirname "$0")/common.sh"
T="$COMPAT_TOPIC"

log "auto-creating $T by producing one message"
printf 'k\tv\n' | kc -P -t "$T" -K '\t' || fail "kcat -P exited with $?"
wait_metadata "$T" 1

kc -L -J -m 10 >"$WORK/all.json" || fail "kcat -L (all topics) exited with $?"
"$PY" "$KCAT_DIR/kcat_data.py" check-metadata "$WORK/all.json" "$T" 1 ||
    fail "all-topics metadata (kcat -L) does not list $T correctly"
kc -L -m 10 >"$WORK/all.txt" || fail "kcat -L (plain) exited with $?"
grep -q "topic \"$T\" with 1 partitions" "$WORK/all.txt" ||
    { head -n 20 "$WORK/all.txt"; fail "plain kcat -L output lacks 'topic \"$T\" with 1 partitions'"; }
echo "PASS: $T listed with 1 partition"
