#!/usr/bin/env bash
# The TLS figures of the README (issue 16): produce throughput over TLS as a fraction of
# plaintext in one `strom bench` run (--baseline-bootstrap), and TLS handshakes per second
# (openssl s_time: new sessions, full handshakes, one client).
#
#   ./scripts/tls_figures.sh [BENCH_SECONDS] [STROM_BIN]     (default: 10, target/release/strom)
#
# Starts its own broker on 127.0.0.1:19392 (PLAINTEXT) and :19393 (SSL, and :19394 SSL
# with mTLS) in a temp directory with certificates made by openssl, and stops it after.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS="${1:-10}"
BIN="${2:-target/release/strom}"
[ -x "$BIN" ] || cargo build --release --bin strom
DIR="$(mktemp -d)"
BROKER=""
cleanup() {
    [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null && wait "$BROKER" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT

cd "$DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj "/CN=strom figures CA" 2>/dev/null
for who in broker alice; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$who.key" -out "$who.csr" \
        -subj "/O=Strom/CN=$who" 2>/dev/null
    printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" > "$who.ext"
    openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$who.crt" -days 2 \
        -extfile "$who.ext" 2>/dev/null
    cat "$who.key" "$who.crt" > "$who.pem"
done
printf 'security.protocol=SSL\nssl.truststore.location=%s/ca.pem\n' "$DIR" > tls.properties
cd - >/dev/null

"$BIN" serve --log-dirs "$DIR/data" \
    --listeners PLAINTEXT://127.0.0.1:19392,SSL://127.0.0.1:19393,MTLS://127.0.0.1:19394 \
    --override listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL \
    --override "ssl.keystore.location=$DIR/broker.pem" \
    --override "listener.name.mtls.ssl.truststore.location=$DIR/ca.pem" \
    --override listener.name.mtls.ssl.client.auth=required \
    --override strom.http.listener= > "$DIR/broker.log" 2>&1 &
BROKER=$!
for _ in $(seq 100); do grep -q "strom is serving" "$DIR/broker.log" && break; sleep 0.1; done
grep -q "strom is serving" "$DIR/broker.log" || { cat "$DIR/broker.log"; exit 1; }

echo "==> strom bench: ${SECS} s plaintext (baseline) then ${SECS} s over TLS, 1 KiB records, acks=1"
"$BIN" bench -b 127.0.0.1:19393 --command-config "$DIR/tls.properties" \
    --baseline-bootstrap 127.0.0.1:19392 --duration "$SECS" --partitions 3 --producers 2 --consumers 1 |
    grep -E "baseline produce|^produce|^consume|% of the baseline|errors"

for port in 19393 19394; do
    what="server authentication"
    extra=()
    if [ "$port" = 19394 ]; then
        what="mTLS (client certificate required)"
        extra=(-cert "$DIR/alice.crt" -key "$DIR/alice.key")
    fi
    for proto in -tls1_3 -tls1_2; do
        echo "==> openssl s_time ($what, ${proto#-}): full handshakes for ${SECS} s, one client"
        openssl s_time -connect "127.0.0.1:$port" -new "$proto" -CAfile "$DIR/ca.pem" "${extra[@]}" \
            -time "$SECS" 2>/dev/null | grep -E "connections in|connections/user sec" | head -2
    done
done
