#!/usr/bin/env bash
# kcat: 100 records with CreateTime T0 + 1000*i (T0 = now - 1 h) in a 1-partition
# topic; kcat cannot set per-message timestamps, so kcat_admin.py (confluent-kafka)
# writes them. kcat -Q -t T:0:<ts> (offsets for times) must answer 42 for
# T0 + 42 s - 500 ms and for T0 + 42 s, and -1 after the last record;
# kcat -C -o s@<T0 + 42 s> must read 42..99 in order with exact timestamps (%T).
source "$(dirname "$0")/common.sh"
T="$COMPAT_TOPIC"

T0="$("$PY" "$KCAT_DIR/kcat_data.py" seek-t0)"
kcat_admin create "$T" 1
kcat_admin produce-timestamps "$T" "$T0"

answers=()
seek_ts=""
while IFS=$'\t' read -r name ts want; do
    [ "$want" = none ] && want=-1
    rc=0
    kc -Q -t "$T:0:$ts" >"$WORK/q.out" 2>"$WORK/q.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$WORK/q.err"; fail "kcat -Q -t $T:0:$ts exited with $rc"; }
    got="$(awk -v t="$T" '$1 == t && $2 == "[0]" && $3 == "offset" { print $4 }' "$WORK/q.out")"
    [ "$got" = "$want" ] || { cat "$WORK/q.out" "$WORK/q.err"; fail "kcat -Q for $name ($ts): offset '$got', expected $want"; }
    log "kcat -Q $name ($ts): offset $got"
    answers+=("$name→$got")
    [ "$name" = "T0+42s" ] && seek_ts="$ts"
done < <("$PY" "$KCAT_DIR/kcat_data.py" seek-queries "$T0")
[ -n "$seek_ts" ] || fail "no T0+42s query"

rc=0
kc -C -t "$T" -p 0 -o "s@$seek_ts" -e -q -f '%o %T %K %S\n%k%s\n' >"$WORK/out.bin" 2>"$WORK/consume.err" || rc=$?
[ "$rc" -eq 0 ] || { tail -n 30 "$WORK/consume.err"; fail "kcat -C -o s@$seek_ts exited with $rc"; }
read_msg="$("$PY" "$KCAT_DIR/kcat_data.py" check-seek "$WORK/out.bin" "$T0")" || { echo "$read_msg"; exit 1; }
joined="$(printf '%s, ' "${answers[@]}")"
echo "PASS: kcat -Q ${joined%, }; $read_msg (records written by confluent-kafka: kcat cannot set timestamps)"
