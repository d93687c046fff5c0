#!/usr/bin/env bash
# Runs the cargo-fuzz (libFuzzer + ASan) targets in fuzz/.
#
#   ./scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60, every target)
#
# Longer campaigns are the same command with more seconds, e.g. `./scripts/fuzz.sh 3600`
# for one CPU-hour per target. STROM_FUZZ_SANITIZER picks cargo-fuzz's sanitizer
# (default `address`); CI's short run (./scripts/test.sh, 10 s per target) uses `none`:
# the ASan build of the 13 targets took ~7 of CI's 50 minutes, the uninstrumented one
# ~5, and a 10-s run finds panics (what the short run is for) just as well. The targets'
# code is safe Rust; ASan matters for the unsafe edges (mapped files, C codecs), which
# the campaigns keep covering.
# Each target starts from the committed killer corpus (fuzz/corpus-killers/<target>)
# plus whatever it found before (fuzz/corpus/<target>, not committed). Limits: 512 MiB
# RSS, 64 MiB per malloc, 5 s per input. Prints execs, exec/s and crashes per target and
# exits non-zero if any target crashed (artifacts in fuzz/artifacts/<target>).
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer); the pinned stable toolchain
# accepts them with RUSTC_BOOTSTRAP=1, which this script sets for the fuzz build only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

SECS="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    mapfile -t TARGETS < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^strom-fuzz$')
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz (crates.io)"
    cargo install cargo-fuzz --locked --version 0.13.2
fi

SANITIZER="${STROM_FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1
echo "==> building ${#TARGETS[@]} fuzz targets (sanitizer: $SANITIZER, release)"
cargo fuzz build -O -s "$SANITIZER" >/dev/null

total_execs=0
total_crashes=0
summary=()
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=()
    [ -d "corpus-killers/$t" ] && seeds+=("corpus-killers/$t")
    log="artifacts/$t/last-run.log"
    before=$(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
    set +e
    cargo fuzz run -O -s "$SANITIZER" "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$SECS" -rss_limit_mb=512 -malloc_limit_mb=64 -timeout=5 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    set -e
    after=$(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    crashes=$((after - before))
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
    total_execs=$((total_execs + ${execs:-0}))
    total_crashes=$((total_crashes + crashes))
    summary+=("$(printf '%-18s %6ss %12s execs %8s exec/s %3d crashes' "$t" "$SECS" "${execs:-0}" "${rate:-0}" "$crashes")")
    echo "${summary[-1]}"
    if [ "$crashes" -ne 0 ]; then tail -40 "$log"; fi
done
echo "==> fuzz summary (${#TARGETS[@]} targets x ${SECS}s = $((${#TARGETS[@]} * SECS)) CPU-s)"
printf '%s\n' "${summary[@]}"
echo "fuzz: total ${total_execs} execs, ${total_crashes} crashes"
[ "$total_crashes" -eq 0 ]
