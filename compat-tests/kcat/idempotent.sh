#!/usr/bin/env bash
# kcat idempotent producer (-X enable.idempotence=true -X acks=all, librdkafka's
# default partitioner) writes 5,000 keyed records from one input file to a topic
# created with 3 partitions (kcat_admin.py); kcat -C -e reads all partitions back:
# each key on one partition, each partition holds its records exactly once, in send
# order, offsets from 0; kcat -Q (earliest -2 / latest -1) gives 0 and the count.
source "$(dirname "$0")/common.sh"
T="$COMPAT_TOPIC"
N=3

kcat_admin create "$T" "$N"
"$PY" "$KCAT_DIR/kcat_data.py" gen-idempotent "$WORK/in.txt"
log "producing $(wc -l <"$WORK/in.txt") records to $T"
produce "$T" "$WORK/in.txt" -X enable.idempotence=true -X acks=all

rc=0
kc -C -t "$T" -o beginning -e -q -f '%p %o %K %S\n%k%s\n' >"$WORK/out.bin" 2>"$WORK/consume.err" || rc=$?
[ "$rc" -eq 0 ] || { tail -n 30 "$WORK/consume.err"; fail "kcat -C exited with $rc"; }
for which in -2 -1; do
    args=()
    for ((p = 0; p < N; p++)); do args+=(-t "$T:$p:$which"); done
    rc=0
    kc -Q "${args[@]}" >"$WORK/q$which.out" 2>"$WORK/q.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$WORK/q.err"; fail "kcat -Q ${args[*]} exited with $rc"; }
done
"$PY" "$KCAT_DIR/kcat_data.py" check-idempotent "$WORK/out.bin" "$N" "$WORK/q-2.out" "$WORK/q-1.out"
