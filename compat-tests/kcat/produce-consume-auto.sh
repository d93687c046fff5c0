#!/usr/bin/env bash
# kcat: produce 10k binary-ish keyed messages (kcat -P -K '\t' -D <6-byte
# delimiter>) to a new auto-created topic; consume with
# kcat -C -o beginning -e -f '%o %K %S\n%k%s\n' and compare byte for byte.
# Values never contain the 6-byte message delimiter (see kcat_data.py).
source "$(dirname "$0")/common.sh"
T="$COMPAT_TOPIC"

"$PY" "$KCAT_DIR/kcat_data.py" gen-auto "$WORK/in.bin"
log "producing to new topic $T (auto-create): $(wc -c <"$WORK/in.bin") input bytes"
rc=0
kc -P -t "$T" -K '\t' -D "$MSG_DELIM_ARG" <"$WORK/in.bin" 2>"$WORK/produce.err" || rc=$?
[ "$rc" -eq 0 ] || { tail -n 30 "$WORK/produce.err"; fail "kcat -P exited with $rc"; }

wait_metadata "$T" 1

log "consuming $T from the beginning"
rc=0
kc -C -t "$T" -p 0 -o beginning -e -q -f '%o %K %S\n%k%s\n' >"$WORK/out.bin" 2>"$WORK/consume.err" || rc=$?
[ "$rc" -eq 0 ] || { tail -n 30 "$WORK/consume.err"; fail "kcat -C exited with $rc"; }
"$PY" "$KCAT_DIR/kcat_data.py" check-auto "$WORK/out.bin"
