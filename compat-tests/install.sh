#!/usr/bin/env bash
# Idempotent installer for the Strom compatibility-test clients.
#
#   * kcat (Debian package; bookworm ships kcat 1.7.1 linked to librdkafka 2.0.2), and the
#     openssl command (Debian package) when missing: lib/certs.py makes the TLS
#     scenarios' certificates with it
#   * a Python venv at compat-tests/.venv with the pinned clients from
#     compat-tests/requirements.txt (confluent-kafka, kafka-python, aiokafka)
#   * kafkajs (npm, pinned in compat-tests/kafkajs/package.json and
#     package-lock.json) into compat-tests/kafkajs/node_modules with `npm ci`;
#     Node.js/npm come from apt only when `node` is missing
#   * compat-tests/rust/bin/compat-rust (the rdkafka and rskafka columns): built with
#     `cargo build --release --locked` (CARGO_TARGET_DIR=compat-tests/rust/target),
#     rdkafka linked dynamically against Debian's librdkafka-dev (+ pkg-config, apt);
#     cargo rebuilds only when the sources or Cargo.lock changed, the copy follows
#   * the Go clients (the sarama and kafka_go columns), from Debian packages only:
#     Sarama 1.22.1 (golang-github-shopify-sarama-dev) and kafka-go 0.2.1
#     (golang-github-segmentio-kafka-go-dev), built with Debian's Go in GOPATH mode
#     (GO111MODULE=off, GOPROXY=off: nothing is downloaded) into
#     compat-tests/sarama/bin/compat-sarama and compat-tests/kafka_go/bin/compat-kafka-go;
#     rebuilt when their sources, the shared compat-tests/lib/gocompat, the Go
#     version or a package version changed
#
# `install.sh --python-only` stops after kcat and the venv (what the container test uses).
#
# Safe to run repeatedly: every step is skipped when already satisfied.
# Works on a fresh Debian machine with only python3; installs python3-venv
# through apt when `python3 -m venv` cannot work.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.strom-requirements.sha256"
PYTHON="${PYTHON:-python3}"

say() { printf '[compat-install] %s\n' "$*"; }
die() { printf '[compat-install] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and sudo is not available; cannot apt-get install"
    SUDO="sudo"
fi

APT_UPDATED=0
apt_install() {
    # apt_install PKG... : install Debian packages, running `apt-get update`
    # only if the package lists are missing/stale for what we need.
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found (this installer targets Debian); install manually: $*"
    local log
    log="$(mktemp)"
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -q --no-install-recommends "$@" >"$log" 2>&1; then
        if [ "$APT_UPDATED" -eq 0 ]; then
            say "apt-get update"
            $SUDO apt-get update -q >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; die "apt-get update failed"; }
            APT_UPDATED=1
        fi
        if ! $SUDO apt-get install -y -q --no-install-recommends "$@" >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            rm -f "$log"
            die "apt-get install $* failed"
        fi
    fi
    rm -f "$log"
}

# ---- 1. kcat -------------------------------------------------------------
if command -v kcat >/dev/null 2>&1; then
    :
else
    say "installing kcat (apt)"
    apt_install kcat
    command -v kcat >/dev/null 2>&1 || die "kcat still not on PATH after apt-get install"
fi
# The TLS scenarios (security-ssl, security-sasl-ssl) make their certificates with the
# openssl command (lib/certs.py); slim Debian images have libssl but not the command.
if ! command -v openssl >/dev/null 2>&1; then
    say "installing openssl (apt)"
    apt_install openssl
    command -v openssl >/dev/null 2>&1 || die "openssl still not on PATH after apt-get install"
fi

# ---- 2. python3 + venv support ----------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || { say "installing python3 (apt)"; apt_install python3; }
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian strips ensurepip out of python3; it lives in python3.X-venv.
    pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    say "installing python${pyver}-venv (apt)"
    apt_install "python${pyver}-venv" || true
    "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_install python3-venv
    "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || die "$PYTHON cannot create venvs even after installing python3-venv"
fi

# ---- 3. the venv ------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "creating venv $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "python3 -m venv $VENV failed"
fi

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ] || ! "$VENV/bin/python" -c 'import confluent_kafka, kafka, aiokafka' >/dev/null 2>&1; then
    say "pip install -r requirements.txt"
    log="$(mktemp)"
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQ" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        die "pip install -r $REQ failed"
    fi
    rm -f "$log"
    "$VENV/bin/python" -c 'import confluent_kafka, kafka, aiokafka' || die "clients not importable after pip install"
    echo "$want" >"$STAMP"
fi

if [ "${1:-}" = "--python-only" ]; then
    exit 0
fi

# ---- 4. kafkajs (npm) ---------------------------------------------------------
KJS="$HERE/kafkajs"
if ! command -v node >/dev/null 2>&1; then
    say "installing nodejs + npm (apt)"
    apt_install nodejs npm
    command -v node >/dev/null 2>&1 || die "node still not on PATH after apt-get install nodejs"
fi
command -v npm >/dev/null 2>&1 || { say "installing npm (apt)"; apt_install npm; }
command -v npm >/dev/null 2>&1 || die "npm not on PATH"
# Reinstall when package-lock.json changed since the last `npm ci` (npm records the
# installed tree in node_modules/.package-lock.json) or kafkajs does not load.
KJS_STAMP="$KJS/node_modules/.strom-package-lock.sha256"
kjs_want="$(sha256sum "$KJS/package-lock.json" | cut -d' ' -f1)"
kjs_have="$(cat "$KJS_STAMP" 2>/dev/null || true)"
if [ "$kjs_want" != "$kjs_have" ] || ! (cd "$KJS" && node -e 'require("kafkajs")') >/dev/null 2>&1; then
    say "npm ci (kafkajs)"
    log="$(mktemp)"
    if ! (cd "$KJS" && npm ci --no-audit --no-fund) >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        die "npm ci in $KJS failed"
    fi
    rm -f "$log"
    (cd "$KJS" && node -e 'require("kafkajs")') || die "kafkajs not loadable after npm ci"
    echo "$kjs_want" >"$KJS_STAMP"
fi

# ---- 5. Rust clients: rdkafka + rskafka (one binary) -------------------------
RS="$HERE/rust"
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists rdkafka; then
    say "installing librdkafka-dev + pkg-config (apt; rdkafka links the system librdkafka)"
    apt_install librdkafka-dev pkg-config
    pkg-config --exists rdkafka || die "pkg-config still does not find rdkafka after apt-get install librdkafka-dev"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not on PATH (the Rust toolchain from rust-toolchain.toml is needed for compat-tests/rust)"
log="$(mktemp)"
# A no-op when nothing changed; 2 jobs by default (small machines, builds running beside it).
if ! (cd "$RS" && CARGO_TARGET_DIR="$RS/target" CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" \
        cargo build --release --locked) >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    die "cargo build in $RS failed"
fi
rm -f "$log"
if ! cmp -s "$RS/target/release/compat-rust" "$RS/bin/compat-rust"; then
    say "installing compat-tests/rust/bin/compat-rust"
    mkdir -p "$RS/bin"
    cp "$RS/target/release/compat-rust" "$RS/bin/compat-rust.tmp"
    mv -f "$RS/bin/compat-rust.tmp" "$RS/bin/compat-rust"
fi
rs_ver="$("$RS/bin/compat-rust" --version)" || die "compat-rust --version failed"

# ---- 6. Go clients: Sarama + kafka-go (Debian packages, GOPATH build) --------
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
# gcc and libc6-dev: Sarama's zstd codec (golang-github-datadog-zstd-dev) is cgo.
GO_PKGS=(golang-go gcc libc6-dev golang-github-shopify-sarama-dev golang-github-segmentio-kafka-go-dev)
go_missing=()
for pkg in "${GO_PKGS[@]}"; do
    deb_installed "$pkg" || go_missing+=("$pkg")
done
if [ "${#go_missing[@]}" -gt 0 ]; then
    say "installing ${go_missing[*]} (apt)"
    apt_install "${go_missing[@]}"
fi
command -v go >/dev/null 2>&1 || die "go still not on PATH after apt-get install golang-go"
[ -d /usr/share/gocode/src/github.com/Shopify/sarama ] || die "Sarama sources missing from /usr/share/gocode"
[ -d /usr/share/gocode/src/github.com/segmentio/kafka-go ] || die "kafka-go sources missing from /usr/share/gocode"

go_build() {
    # go_build DIR BINARY DEBIAN-PACKAGE: build compat-tests/DIR (package main, importing
    # stromcompat/gocompat and Debian's packages) into DIR/bin/BINARY, unless the stamp
    # (sources + go version + package versions) says the binary is current.
    local dir="$1" bin="$2" pkg="$3"
    local out="$HERE/$dir/bin/$bin" stamp="$HERE/$dir/bin/.$bin.stamp"
    local want have gopath log
    want="$( (cd "$HERE" && cat "$dir"/*.go lib/gocompat/*.go && go version &&
              deb_version golang-github-shopify-sarama-dev && deb_version golang-github-segmentio-kafka-go-dev) |
            sha256sum | cut -d' ' -f1)"
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [ "$want" = "$have" ] && [ -x "$out" ] && "$out" --version >/dev/null 2>&1; then
        return 0
    fi
    say "go build $dir -> $dir/bin/$bin"
    gopath="$(mktemp -d "${TMPDIR:-/tmp}/strom-compat-gopath.XXXXXX")"
    log="$(mktemp)"
    mkdir -p "$gopath/src/stromcompat" "$HERE/$dir/bin"
    ln -s "$HERE/lib/gocompat" "$gopath/src/stromcompat/gocompat"
    ln -s "$HERE/$dir" "$gopath/src/stromcompat/$dir"
    # GOPATH mode over Debian's /usr/share/gocode; GOPROXY=off and an empty GOFLAGS so
    # that nothing is ever fetched. -Wno-deprecated-declarations: DataDog/zstd's cgo
    # calls a deprecated libzstd function.
    if ! (cd "$gopath/src/stromcompat/$dir" &&
          env GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS= GOPROXY=off GOTOOLCHAIN=local \
              GOCACHE="${TMPDIR:-/tmp}/strom-compat-gocache" CGO_ENABLED=1 \
              CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" \
              go build -trimpath -ldflags "-X main.libVersion=$(deb_version "$pkg")" -o "$out.tmp" .) >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -rf "$gopath" "$log" "$out.tmp"
        die "go build of compat-tests/$dir failed"
    fi
    rm -rf "$gopath" "$log"
    mv -f "$out.tmp" "$out"
    "$out" --version >/dev/null || die "$out --version failed after the build"
    echo "$want" >"$stamp"
}
go_build sarama compat-sarama golang-github-shopify-sarama-dev
go_build kafka_go compat-kafka-go golang-github-segmentio-kafka-go-dev
go_vers="$("$HERE/sarama/bin/compat-sarama" --version | cut -d' ' -f1,2), $("$HERE/kafka_go/bin/compat-kafka-go" --version |
    cut -d' ' -f1,2) (Debian packages, $(go version | cut -d' ' -f3))"

# ---- 7. report --------------------------------------------------------------
kcat_ver="$(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*librdkafka \([^ ]*\).*/kcat \1 (librdkafka \2)/p')"
py_vers="$("$VENV/bin/python" - <<'PY'
import aiokafka, confluent_kafka, kafka
print("confluent-kafka %s (librdkafka %s), kafka-python %s, aiokafka %s"
      % (confluent_kafka.__version__, confluent_kafka.libversion()[0], kafka.__version__, aiokafka.__version__))
PY
)"
kjs_ver="$(cd "$KJS" && node -p '"kafkajs " + require("kafkajs/package.json").version + " (node " + process.version + ")"')"
say "ready: ${kcat_ver:-kcat ?}; $py_vers; $kjs_ver; ${rs_ver#compat-rust: }; $go_vers"
