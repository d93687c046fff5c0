#!/usr/bin/env bash
# kcat (Debian librdkafka 2.0.2, builtin gzip, snappy, lz4, zstd): for each codec,
# 1,000 keyed compressible records produced with kcat -P -z <codec> to a new
# auto-created topic $COMPAT_TOPIC-<codec> (1 partition), consumed back with
# kcat -C -e and compared exactly, offsets 0..999.
source "$(dirname "$0")/common.sh"

"$PY" "$KCAT_DIR/kcat_data.py" gen-compression "$WORK/in.txt"
CODECS="none gzip snappy lz4 zstd"
for codec in $CODECS; do
    T="$COMPAT_TOPIC-$codec"
    produce "$T" "$WORK/in.txt" -z "$codec"
    wait_metadata "$T" 1 >/dev/null
    rc=0
    kc -C -t "$T" -p 0 -o beginning -e -q -f '%o %K %S\n%k%s\n' >"$WORK/out-$codec.bin" 2>"$WORK/consume.err" || rc=$?
    [ "$rc" -eq 0 ] || { tail -n 30 "$WORK/consume.err"; fail "$codec: kcat -C exited with $rc"; }
    "$PY" "$KCAT_DIR/kcat_data.py" check-compression "$WORK/out-$codec.bin" "$codec"
done
echo "PASS: codecs ${CODECS// /, }: 1000 records each read back exactly"
