#!/usr/bin/env bash
# The schema registry figures of the README (issue 18):
# - registry lookups per second (`strom schema bench`: GET /schemas/ids/{id}, then
#   POST /subjects/{subject}, over keep-alive connections);
# - produce throughput of a schema-validated topic as a fraction of an unvalidated one,
#   in one `strom bench` run each (--baseline-topic): the id check
#   (confluent.value.schema.validation) and full payload validation
#   (strom.value.schema.validation.payload), records framed with --schema-id.
#
#   ./scripts/registry_figures.sh [BENCH_SECONDS] [STROM_BIN]   (default: 2, target/release/strom)
#
# Phases are short on purpose: longer ones fill the page cache and writeback throttles the
# later phase, so the ratio would measure order rather than validation.
#
# Starts its own broker on 127.0.0.1:19492 (registry :19481) in a temp directory and
# stops it after.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS="${1:-2}"
BIN="${2:-target/release/strom}"
[ -x "$BIN" ] || cargo build --release --bin strom
DIR="$(mktemp -d)"
BROKER=""
cleanup() {
    [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT

B=127.0.0.1:19492
R=http://127.0.0.1:19481
"$BIN" serve --log-dirs "$DIR/data" --listeners "PLAINTEXT://$B" \
    --override strom.http.listener= --override strom.schema.registry.listener=127.0.0.1:19481 \
    > "$DIR/broker.log" 2>&1 &
BROKER=$!
for _ in $(seq 100); do grep -q "strom is serving" "$DIR/broker.log" && break; sleep 0.1; done
grep -q "strom is serving" "$DIR/broker.log" || { cat "$DIR/broker.log"; exit 1; }

"$BIN" topic create -b "$B" plain -p 3 >/dev/null
"$BIN" topic create -b "$B" ids -p 3 --config confluent.value.schema.validation=true >/dev/null
"$BIN" topic create -b "$B" payload -p 3 --config confluent.value.schema.validation=true \
    --config strom.value.schema.validation.payload=true >/dev/null
echo '"bytes"' > "$DIR/bytes.avsc"
for s in ids-value payload-value; do
    "$BIN" schema --registry "$R" register "$s" "$DIR/bytes.avsc" -o json > "$DIR/id.json"
done
ID=$(sed -n 's/.*"id": *\([0-9]*\).*/\1/p' "$DIR/id.json")

echo "==> strom schema bench: ${SECS} s per request kind, 4 keep-alive connections"
"$BIN" schema --registry "$R" bench ids-value --duration "$SECS" --connections 4

for t in ids payload; do
    echo "==> strom bench: ${SECS} s on topic plain (baseline) then ${SECS} s on topic $t, 1 KiB framed records, acks=1"
    "$BIN" bench -b "$B" --topic "$t" --baseline-topic plain --schema-id "$ID" --duration "$SECS" \
        --producers 2 --consumers 0 --keep-topic |
        grep -E "baseline produce|^produce|% of the baseline|errors"
done
