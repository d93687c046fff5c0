#!/usr/bin/env bash
# The Strom test command.
#
#   ./scripts/test.sh [all|lint|unit|compat|cluster|nemesis|load|fuzz|container]   (default: all)
#   ./scripts/test.sh nemesis [scripts/nemesis.py options, e.g. --faults 150 --duration 3600]
#
#   lint    cargo fmt --check; cargo clippy (all targets, -D warnings)
#   unit    cargo test --workspace (unit + integration tests)
#   compat  cargo build --bin strom; compat-tests/install.sh;
#           compat-tests/run --strom-bin target/debug/strom
#   load    load tests (loopback, bounded): 5,000 idle connections, 500 slowloris,
#           10,000 oversized/negative frames, a client that stops reading (~30 s;
#           release build alone, debug build within `all`)
#   fuzz    every cargo-fuzz target for STROM_FUZZ_SECONDS (default 10) each, built
#           without ASan unless STROM_FUZZ_SANITIZER=address (./scripts/fuzz.sh, whose
#           campaigns default to ASan; installs cargo-fuzz from crates.io if missing)
#   cluster real clients (confluent-kafka, kafka-python, kafkajs, kcat) against
#           `strom dev-cluster 3` through compat-tests/run --bootstrap, and the
#           metadata propagation figure (scripts/cluster_test.py, ~1 min), then the
#           short nemesis run (below)
#   nemesis fault injection (scripts/nemesis.py, ~2 min): 3 nodes, RF 3,
#           min.insync.replicas=2, idempotent acks=all producers (confluent-kafka,
#           kafka-python), a group consumer and a committer, under kill -9, SIGSTOP and
#           network partitions (namespaces of its own; needs root, else skipped), then
#           Jepsen-style checks: no acknowledged record lost or duplicated, offsets
#           consistent and contiguous, replicas byte-identical, commits never backwards
#   container  the Docker image: podman builds the Dockerfile (local base images,
#           cached under /var/tmp/strom-container-test), runs it and drives it
#           with kcat and confluent-kafka (scripts/container_test.py; installs podman
#           and debootstrap with apt if missing)
#   all     lint, unit, load, fuzz, compat, cluster (with the short nemesis run), container
#
# STROM_SKIP_COMPAT=1 skips the compat suite (e.g. on a machine without
# apt/PyPI access), STROM_SKIP_CONTAINER=1 the container test. Works on a
# fresh Debian machine with only the Rust toolchain and python3:
# compat-tests/install.sh installs kcat, python3-venv (if needed) and the
# pinned Python clients.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

SUITE="${1:-all}"
case "$SUITE" in
    all | lint | unit | compat | cluster | nemesis | load | fuzz | container) ;;
    -h | --help)
        sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [all|lint|unit|compat|cluster|nemesis|load|fuzz|container]" >&2
        exit 2
        ;;
esac

T0=$SECONDS
STEP="(setup)"
elapsed() { local s=$((SECONDS - T0)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '\n==> FAILED at step: %s (exit %d) after %s\n' "$STEP" "$rc" "$(elapsed)"
        df -h "$ROOT" 2>/dev/null | sed 's/^/    /' || true
    fi
}
trap on_exit EXIT

step() {
    STEP="$*"
    printf '\n==> [%s] %s\n' "$(elapsed)" "$*"
}

run_lint() {
    step "cargo fmt --all -- --check"
    cargo fmt --all -- --check
    step "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
}

run_unit() {
    step "cargo test --workspace"
    cargo test --workspace
}

run_load() {
    # Alone (`./scripts/test.sh load`) in release, for the figures it prints; within `all`
    # in the debug build the unit step already compiled (the release build cost ~5 of the
    # 50 CI minutes; the tests assert behaviour, not speed).
    if [ "${1:-release}" = "release" ]; then
        step "load tests (cargo test --release --test load -- --ignored)"
        cargo test --release --test load -- --ignored --nocapture --test-threads=1
    else
        step "load tests, debug build (cargo test --test load -- --ignored)"
        cargo test --test load -- --ignored --nocapture --test-threads=1
    fi
}

run_fuzz() {
    step "fuzz: ${STROM_FUZZ_SECONDS:-10} s per target"
    STROM_FUZZ_SANITIZER="${STROM_FUZZ_SANITIZER:-none}" "$ROOT/scripts/fuzz.sh" "${STROM_FUZZ_SECONDS:-10}"
}

run_compat() {
    if [ "${STROM_SKIP_COMPAT:-0}" = "1" ]; then
        step "compat suite SKIPPED (STROM_SKIP_COMPAT=1)"
        return 0
    fi
    step "cargo build --bin strom"
    cargo build --bin strom
    step "compat-tests/install.sh"
    "$ROOT/compat-tests/install.sh"
    step "compat-tests/run --strom-bin target/debug/strom"
    # Runs with the system python3 (stdlib only).
    python3 "$ROOT/compat-tests/run" --strom-bin target/debug/strom
}

run_cluster() {
    if [ "${STROM_SKIP_COMPAT:-0}" = "1" ]; then
        step "cluster client test SKIPPED (STROM_SKIP_COMPAT=1)"
        return 0
    fi
    step "cargo build --bin strom"
    cargo build --bin strom
    step "compat-tests/install.sh"
    "$ROOT/compat-tests/install.sh"
    step "cluster test: real clients against strom dev-cluster 3 (scripts/cluster_test.py)"
    "$ROOT/compat-tests/.venv/bin/python" "$ROOT/scripts/cluster_test.py" --strom-bin target/debug/strom
    nemesis_step
}

nemesis_step() {
    step "nemesis: faults against 3 nodes, Jepsen-style checks (scripts/nemesis.py $*)"
    "$ROOT/compat-tests/.venv/bin/python" "$ROOT/scripts/nemesis.py" --strom-bin target/debug/strom "$@"
}

run_nemesis() {
    if [ "${STROM_SKIP_COMPAT:-0}" = "1" ]; then
        step "nemesis SKIPPED (STROM_SKIP_COMPAT=1)"
        return 0
    fi
    step "cargo build --bin strom"
    cargo build --bin strom
    step "compat-tests/install.sh --python-only (confluent-kafka, kafka-python)"
    "$ROOT/compat-tests/install.sh" --python-only
    nemesis_step "$@"
}

run_container() {
    if [ "${STROM_SKIP_CONTAINER:-0}" = "1" ]; then
        step "container test SKIPPED (STROM_SKIP_CONTAINER=1)"
        return 0
    fi
    step "compat-tests/install.sh --python-only (kcat, confluent-kafka)"
    "$ROOT/compat-tests/install.sh" --python-only
    step "container test (scripts/container_test.py)"
    "$ROOT/compat-tests/.venv/bin/python" "$ROOT/scripts/container_test.py"
}

case "$SUITE" in
    lint) run_lint ;;
    unit) run_unit ;;
    compat) run_compat ;;
    cluster) run_cluster ;;
    nemesis) run_nemesis "${@:2}" ;;
    load) run_load ;;
    fuzz) run_fuzz ;;
    container) run_container ;;
    all)
        run_lint
        run_unit
        run_load debug
        run_fuzz
        run_compat
        run_cluster
        run_container
        ;;
esac

STEP="(done)"
printf '\n==> suite "%s" OK in %s (target/: %s)\n' "$SUITE" "$(elapsed)" \
    "$(du -sh "$ROOT/target" 2>/dev/null | cut -f1)"
