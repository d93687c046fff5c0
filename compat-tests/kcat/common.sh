# Sourced by the kcat scenarios. Expects STROM_BOOTSTRAP and COMPAT_TOPIC.
set -euo pipefail
KCAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${STROM_BOOTSTRAP:?STROM_BOOTSTRAP not set (run through compat-tests/run)}"
: "${COMPAT_TOPIC:?COMPAT_TOPIC not set (run through compat-tests/run)}"
B="$STROM_BOOTSTRAP"
# System python3 (stdlib only) for data generation / checking.
PY="${COMPAT_SYSTEM_PYTHON:-python3}"
# The venv python (confluent-kafka) for setup kcat cannot do itself: kcat_admin.py
# creates topics (partitions, configs) and writes timestamped records.
VPY="$KCAT_DIR/../.venv/bin/python"
# kcat's -D syntax for kcat_data.MSG_DELIM; keep both in sync.
MSG_DELIM_ARG='\xfe\x01\xfd\x02\xfc\x03'
# Every kcat call is bounded (seconds).
KCAT_TIMEOUT="${KCAT_TIMEOUT:-120}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/compat-kcat.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { echo "FAIL: $*"; exit 1; }
kc() { timeout --kill-after=5 "$KCAT_TIMEOUT" kcat -b "$B" "$@"; }

# wait_metadata TOPIC PARTITIONS [SECONDS]: poll `kcat -L -J -t TOPIC` until
# the topic shows PARTITIONS partitions with leaders.
wait_metadata() {
    local topic="$1" n="$2" secs="${3:-30}" i reason=""
    for ((i = 0; i < secs * 2; i++)); do
        if kc -L -J -t "$topic" -m 5 >"$WORK/md.json" 2>"$WORK/md.err" &&
           reason="$("$PY" "$KCAT_DIR/kcat_data.py" check-metadata "$WORK/md.json" "$topic" "$n")"; then
            echo "$reason"
            return 0
        fi
        [ -n "$reason" ] || reason="$(tail -n 3 "$WORK/md.err" 2>/dev/null)"
        sleep 0.5
    done
    fail "metadata for $topic after ${secs}s: $reason"
}

# kcat_admin ARGS...: run the setup helper (see kcat_admin.py); fails the scenario on error.
kcat_admin() {
    local rc=0
    timeout --kill-after=5 "$KCAT_TIMEOUT" "$VPY" "$KCAT_DIR/kcat_admin.py" "$@" || rc=$?
    [ "$rc" -eq 0 ] || fail "kcat_admin.py $1 exited with $rc"
}

# produce TOPIC INPUT [kcat args...]: kcat -P the keyed INPUT file; fails on a non-zero
# exit or any delivery error kcat reports.
produce() {
    local topic="$1" input="$2" rc=0
    shift 2
    kc -P -t "$topic" -K '\t' "$@" <"$input" 2>"$WORK/produce.err" || rc=$?
    if [ "$rc" -ne 0 ] || grep -qi "delivery failed" "$WORK/produce.err"; then
        tail -n 30 "$WORK/produce.err"
        fail "kcat -P to $topic exited with $rc"
    fi
}
