#!/usr/bin/env bash
# kcat: 8 records with 1 MiB incompressible values (kcat -P -K '\t' -D <6-byte
# delimiter>, -X message.max.bytes=4194304) to a topic created with
# max.message.bytes=4194304 (kcat_admin.py: kcat has no CreateTopics); consumed with
# kcat -C -o beginning -e and librdkafka's default fetch sizes (each batch is larger
# than max.partition.fetch.bytes, KIP-74), compared byte for byte, offsets 0..7.
source "$(dirname "$0")/common.sh"
T="$COMPAT_TOPIC"

kcat_admin create "$T" 1 max.message.bytes=4194304
"$PY" "$KCAT_DIR/kcat_data.py" gen-large "$WORK/in.bin"
log "producing 8 x 1 MiB values to $T: $(wc -c <"$WORK/in.bin") input bytes"
produce "$T" "$WORK/in.bin" -D "$MSG_DELIM_ARG" -X message.max.bytes=4194304

log "consuming $T from the beginning"
rc=0
kc -C -t "$T" -p 0 -o beginning -e -q -f '%o %K %S\n%k%s\n' >"$WORK/out.bin" 2>"$WORK/consume.err" || rc=$?
[ "$rc" -eq 0 ] || { tail -n 30 "$WORK/consume.err"; fail "kcat -C exited with $rc"; }
"$PY" "$KCAT_DIR/kcat_data.py" check-large "$WORK/out.bin"
