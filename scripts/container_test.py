#!/usr/bin/env python3
"""The container test (issue 17): builds the image from the Dockerfile with podman, runs
it, and drives it from the host with kcat and confluent-kafka.

    compat-tests/.venv/bin/python scripts/container_test.py      (./scripts/test.sh container)

What it checks, in order:
  1. the image builds from the Dockerfile; its size (aim: <= 30 MB; 25 MB until the TLS
     stack, rustls + ring + x509-parser, added 4 MB; 30.5 MB with the schema registry
     and share groups, 26.3 MB since the strom crate is one codegen unit), user, volume,
     ports, healthcheck and stop signal;
  2. a container with the image's defaults is ready (/readyz) - the time from
     `podman run` is printed - and serves kcat (produce, consume) and confluent-kafka
     (produce, a consumer group that commits); `podman healthcheck run` reports healthy;
  3. strom is the container's PID 1, and `podman stop` (SIGTERM) exits 0 after a graceful
     shutdown that left a clean-shutdown marker in every partition directory of the
     volume; log lines carry UTC timestamps;
  4. a new container on the same volume starts clean (broker log: recovered=0), with
     the records and the group's committed offsets, and the group resumes;
  5. the KAFKA_* environment of apache/kafka's single-node compose example starts Strom:
     both client listeners serve, each advertising its own endpoint, the controller
     listener is not bound, no setting is reported as unknown, the healthcheck passes;
  6. so does the environment of compose.yaml (the README's compose file);
  7. the three services of compose.cluster.yaml form one cluster (host networking, each
     service's ports remapped to free ones): every broker lists all three, a topic is
     produced to and consumed from; one container is killed (SIGKILL): the others fence
     it, its partitions fail over (RF=3, min.insync.replicas=2) and every partition
     keeps taking acks=all writes; restarted on its volume it catches up and rejoins
     every ISR.

The machine needs no Docker engine and no registry access. Base images cannot be
pulled, so the build stage's base is made here: a Debian bookworm root from debootstrap
(gcc, libc6-dev, ca-certificates) imported with `podman import`; the Rust toolchain is
the host's pinned one, mounted read-only into the build (`podman build -v`), and cargo
downloads crates from crates.io into a cache. The runtime stage is `scratch`.

Everything cached lives under STROM_CONTAINER_CACHE (default /var/tmp/strom-container-test):
the debootstrap root, podman's image store (--root: base image, layers), the cargo
registry and the build's target/ directory. Podman's run state goes to
/run/strom-container-test. Containers are run with runc, cgroupfs and no default
ulimits (CONTAINERS_CONF written here), as this machine needs. Ports are mapped from
free host ports (-p 127.0.0.1:PORT:9092), so the image runs with its own defaults.
Podman schedules HEALTHCHECKs with systemd timers, which this machine lacks (podman
logs an error about it); `podman healthcheck run` runs the image's check once.
"""

import datetime
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("STROM_CONTAINER_CACHE", "/var/tmp/strom-container-test"))
RUN = Path("/run/strom-container-test")
IMAGE = "localhost/strom:test"
BASE = "localhost/strom-build-base:bookworm"
PREFIX = "strom-ctest"
VOLUME = f"{PREFIX}-data"
MIRROR = os.environ.get("STROM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
T0 = time.monotonic()
FIGURES = []


def say(msg):
    print(f"[container-test {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def figure(name, value):
    FIGURES.append((name, value))
    say(f"FIGURE {name}: {value}")


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def run(*cmd, input=None, stdin=None, check_rc=True, capture=True, env=None, timeout=None, cwd=None):
    r = subprocess.run(
        [str(c) for c in cmd],
        input=input,
        stdin=stdin,
        cwd=cwd,
        capture_output=capture,
        env=env,
        timeout=timeout,
        text=True,
    )
    if check_rc and r.returncode != 0:
        out = (r.stdout or "")[-3000:] + (r.stderr or "")[-3000:] if capture else ""
        raise Failed(f"{' '.join(str(c) for c in cmd[:6])} ... exited {r.returncode}\n{out}")
    return r


def podman(*args, nice=False, **kw):
    cmd = ["podman", "--root", CACHE / "storage", "--runroot", RUN / "runroot", "--tmpdir", RUN / "tmp", *args]
    return run(*(["nice", "-n", "10"] if nice else []), *cmd, **kw)


# ---- tools and configuration -------------------------------------------------------


def apt_install(*pkgs):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    say(f"apt-get install {' '.join(pkgs)}")
    if run("apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs, check_rc=False, env=env).returncode:
        run("apt-get", "update", "-q", env=env)
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs, env=env)


def setup():
    # debootstrap, podman's own image store (--root) and the volume check read as root.
    check(os.geteuid() == 0, "the container test runs as root (debootstrap, rootful podman)")
    # runc explicitly: podman's dependency is crun (or runc), and the configuration
    # below needs runc; a fresh machine gets only crun.
    tools = [("podman", "podman"), ("runc", "runc"), ("debootstrap", "debootstrap"), ("kcat", "kcat")]
    missing = [p for p, cmd in tools if not shutil.which(cmd)]
    if missing:
        apt_install(*missing)
    for d in (CACHE, RUN / "runroot", RUN / "tmp", CACHE / "cargo-registry", CACHE / "target"):
        d.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    conf.write_text(
        "# Written by scripts/container_test.py: what podman needs on this machine.\n"
        "[containers]\n"
        "# Raising RLIMIT_NOFILE inside the container is not permitted here.\n"
        "default_ulimits = []\n"
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        "# crun fails on this machine's cgroups.\n"
        'runtime = "runc"\n'
    )
    os.environ["CONTAINERS_CONF"] = str(conf)
    say(run("podman", "--version").stdout.strip())


def build_base():
    """The build stage's base: Debian bookworm with gcc and libc6-dev, no Rust (the
    toolchain is mounted at build time), imported from a debootstrap root."""
    if podman("image", "exists", BASE, check_rc=False).returncode == 0:
        say(f"build base {BASE}: cached")
        return
    rootfs = CACHE / "rootfs"
    if not rootfs.is_dir():
        partial = CACHE / "rootfs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        say(f"debootstrap bookworm ({MIRROR}) -> {rootfs}")
        started = time.monotonic()
        run("nice", "debootstrap", "--variant=minbase", "--include=gcc,libc6-dev,ca-certificates", "bookworm", partial, MIRROR)
        for deb in (partial / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        for junk in ("usr/share/doc", "usr/share/man", "usr/share/locale"):
            shutil.rmtree(partial / junk, ignore_errors=True)
        partial.rename(rootfs)
        figure("debootstrap", f"{time.monotonic() - started:.0f} s")
    say(f"podman import -> {BASE}")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    podman(
        "import",
        "--change", "ENV CARGO_HOME=/usr/local/cargo",
        "--change", "ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "-", BASE,
        stdin=tar.stdout,
    )
    check(tar.wait() == 0, "tar of the debootstrap root failed")


def toolchain():
    """The host's pinned Rust toolchain (rust-toolchain.toml), for a read-only mount."""
    sysroot = run("rustc", "--print", "sysroot", cwd=ROOT).stdout.strip()
    path = Path(sysroot).resolve()
    check((path / "bin" / "cargo").exists(), f"no cargo in the toolchain at {path}")
    say(f"toolchain {path} ({run(path / 'bin' / 'rustc', '--version').stdout.strip()})")
    return path


def build_image():
    tc = toolchain()
    say("podman build (Dockerfile; BUILD_IMAGE = the local base)")
    # The host's CA bundle, so cargo trusts what the host trusts (a TLS-inspecting
    # egress proxy's CA, for one); a build image pulled by a user brings its own.
    cas = Path("/etc/ssl/certs/ca-certificates.crt")
    ca_mount = ["-v", f"{cas}:{cas}:ro"] if cas.exists() else []
    # cargo judges freshness by mtime: a checkout older than the cached build (an earlier
    # run on a newer commit, e.g. CI's clone) would not be rebuilt and the image would hold
    # the previous binary. The workspace's own crates are always rebuilt; dependencies
    # stay cached.
    for fp in (CACHE / "target" / "release" / ".fingerprint").glob("strom-*"):
        shutil.rmtree(fp, ignore_errors=True)
    started = time.monotonic()
    podman(
        "build",
        *ca_mount,
        "--format", "docker",  # HEALTHCHECK is a Docker image-format field
        "--network", "host",
        "--build-arg", f"BUILD_IMAGE={BASE}",
        "-v", f"{tc}:/usr/local/rust:ro",
        "-v", f"{CACHE / 'cargo-registry'}:/usr/local/cargo/registry",
        "-v", f"{CACHE / 'target'}:/src/target",
        "-t", IMAGE,
        "-f", ROOT / "Dockerfile",
        ROOT,
        capture=False,
        nice=True,
    )
    figure("image build (podman build, cargo's target/ cached)", f"{time.monotonic() - started:.0f} s")
    info = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    size = info["Size"]
    figure("image size", f"{size / 1e6:.1f} MB ({size} bytes; aim <= 30 MB)")
    check(size <= 30_000_000, f"image is {size} bytes, more than 30 MB")
    cfg = info["Config"]
    check(cfg.get("User") == "65532:65532", f"user {cfg.get('User')!r}")
    check("/var/lib/strom" in (cfg.get("Volumes") or {}), f"volumes {cfg.get('Volumes')}")
    check({"9092/tcp", "9644/tcp", "8081/tcp"} <= set(cfg.get("ExposedPorts") or {}), f"ports {cfg.get('ExposedPorts')}")
    check(cfg.get("StopSignal") == "SIGTERM", f"stop signal {cfg.get('StopSignal')}")
    hc = info.get("Healthcheck") or cfg.get("Healthcheck") or {}
    check("health" in " ".join(hc.get("Test") or []), f"healthcheck {hc}")
    layers = podman("history", "--format", "{{.Size}}\t{{.CreatedBy}}", IMAGE).stdout.strip()
    say("layers:\n" + layers)


# ---- running it ----------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cleanup():
    for c in podman("ps", "-a", "--format", "{{.Names}}", check_rc=False).stdout.split():
        if c.startswith(PREFIX):
            podman("rm", "-f", "-t", "0", c, check_rc=False)
    for v in podman("volume", "ls", "--format", "{{.Name}}", check_rc=False).stdout.split():
        if v.startswith(PREFIX):
            podman("volume", "rm", "-f", v, check_rc=False)


class Container:
    """One container: Kafka port and HTTP port mapped from free host ports."""

    def __init__(self, name, env=(), ports=(9092, 9644, 8081), volume=None):
        self.name = f"{PREFIX}-{name}"
        self.host_ports = {p: free_port() for p in ports}
        self.env = list(env)
        self.volume = volume

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.host_ports[9092]}"

    def start(self):
        args = ["run", "-d", "--name", self.name]
        for inner, outer in self.host_ports.items():
            args += ["-p", f"127.0.0.1:{outer}:{inner}"]
        for kv in self.env:
            args += ["-e", kv]
        if self.volume:
            args += ["-v", f"{self.volume}:/var/lib/strom"]
        started = time.monotonic()
        podman(*args, IMAGE)
        self.wait_ready()
        ready = time.monotonic() - started
        return ready

    def wait_ready(self, timeout=60):
        url = f"http://127.0.0.1:{self.host_ports[9644]}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.state()["Status"] == "exited":
                raise Failed(f"{self.name} exited before it was ready:\n{self.logs()}")
            time.sleep(0.01)
        raise Failed(f"{self.name} not ready after {timeout} s:\n{self.logs()}")

    def state(self):
        return json.loads(podman("inspect", "--format", "{{json .State}}", self.name).stdout)

    def logs(self):
        r = podman("logs", self.name, check_rc=False)
        return r.stdout + r.stderr

    def healthy(self):
        r = podman("healthcheck", "run", self.name, check_rc=False)
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    def stop(self):
        started = time.monotonic()
        podman("stop", "-t", "30", self.name)
        took = time.monotonic() - started
        state = self.state()
        return took, state["ExitCode"]

    def rm(self):
        podman("rm", "-f", "-t", "0", self.name, check_rc=False)


def log_ms(logs, first, last):
    """Milliseconds between the first log line containing `first` and the one with `last`."""
    stamps = {}
    for line in logs.splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z ", line)
        for key in (first, last):
            if m and key in line and key not in stamps:
                stamps[key] = datetime.datetime.fromisoformat(m.group(1)[:26])
    check(first in stamps and last in stamps, f"no log lines {first!r} / {last!r}")
    return (stamps[last] - stamps[first]).total_seconds() * 1000


def kcat(*args, input=None):
    return run("kcat", *args, input=input, timeout=60)


def kcat_roundtrip(bootstrap, topic, n):
    lines = "".join(f"kcat-{i}\n" for i in range(n))
    kcat("-P", "-b", bootstrap, "-t", topic, "-p", "0", input=lines)
    got = kcat("-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q").stdout
    check(got == lines, f"kcat read back {len(got.splitlines())} lines, wanted {n} identical")


def kcat_brokers(bootstrap):
    md = json.loads(kcat("-L", "-J", "-b", bootstrap).stdout)
    return [(b["name"]) for b in md["brokers"]]


def confluent_produce_and_commit(bootstrap, topic, group, n):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    errors = []
    for i in range(n):
        p.produce(topic, key=b"k%d" % (i % 100), value=b"v%d" % i, on_delivery=lambda e, m: e and errors.append(e))
    check(p.flush(30) == 0 and not errors, f"confluent-kafka produce: {errors[:3]}")
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got, deadline = 0, time.monotonic() + 60
    while got < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    check(got == n, f"group {group} consumed {got} of {n}")
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    c.close()
    total = sum(tp.offset for tp in committed)
    check(total == n, f"committed offsets {[(tp.partition, tp.offset) for tp in committed]} sum to {total}, not {n}")


def confluent_resume(bootstrap, topic, group, n_before, n_more):
    """After a restart: the group's offsets are back, and it reads only what is new."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    total = sum(tp.offset for tp in committed)
    check(total == n_before, f"after the restart, committed offsets sum to {total}, not {n_before}")
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(n_more):
        p.produce(topic, key=b"new%d" % i, value=b"after-restart-%d" % i)
    check(p.flush(30) == 0, "produce after restart")
    c.subscribe([topic])
    values, deadline = [], time.monotonic() + 60
    while len(values) < n_more and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            values.append(m.value())
    # Anything delivered twice would arrive within a short extra poll.
    end = time.monotonic() + 2
    while time.monotonic() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            values.append(m.value())
    c.close()
    check(sorted(values) == sorted(b"after-restart-%d" % i for i in range(n_more)),
          f"resumed group read {len(values)} records: {values[:5]}")


def registry(port, method, path, body=None):
    """One request to a schema registry's REST API: (status, parsed JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except OSError as e:
        return None, str(e)


def registry_roundtrip(write_port, read_port, subject):
    """Registers an Avro schema through one registry and reads it back, by id and as the
    subject's latest version, through another (or the same): the id it was given."""
    schema = json.dumps({"type": "record", "name": "Reading", "fields": [{"name": "v", "type": "long"}]})
    status, body = registry(write_port, "POST", f"/subjects/{subject}/versions", {"schema": schema})
    check(status == 200 and isinstance(body, dict) and isinstance(body.get("id"), int),
          f"POST /subjects/{subject}/versions: {status} {body}")
    sid = body["id"]

    def read_back():
        st, b = registry(read_port, "GET", f"/subjects/{subject}/versions/latest")
        ok = st == 200 and isinstance(b, dict) and b.get("id") == sid and json.loads(b.get("schema", "null")) == json.loads(schema)
        return (st, b) if ok else None

    eventually(f"schema {sid} of {subject} read back", read_back, timeout=30)
    status, body = registry(read_port, "GET", f"/schemas/ids/{sid}")
    check(status == 200 and isinstance(body, dict) and "Reading" in body.get("schema", ""), f"GET /schemas/ids/{sid}: {status} {body}")
    return sid


def clean_markers(volume):
    mount = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip())
    parts = [d for d in mount.iterdir() if d.is_dir() and re.fullmatch(r".+-\d+", d.name)]
    unclean = [d.name for d in parts if not (d / "clean-shutdown").exists()]
    # The metadata log (__cluster_metadata-0, ADR 0008) is not a topic partition.
    topic_parts = [d for d in parts if not d.name.startswith("__cluster_metadata-")]
    return len(parts), len(topic_parts), unclean


# ---- the scenarios -------------------------------------------------------------------


def image_defaults():
    podman("volume", "create", VOLUME)
    a = Container("defaults", env=["STROM_ADVERTISED_LISTENERS=PLAINTEXT://localhost:PORT"], volume=VOLUME)
    a.env = [e.replace("PORT", str(a.host_ports[9092])) for e in a.env]
    ready = a.start()
    figure("container start to ready (podman run -> /readyz 200, empty volume)", f"{ready * 1000:.0f} ms")
    say("kcat: produce and consume 1,000 records")
    kcat_roundtrip(a.bootstrap, "kc", 1000)
    say("confluent-kafka: produce 3,000 keyed records, a group consumes and commits")
    confluent_produce_and_commit(a.bootstrap, "ck", "g1", 3000)
    sid = registry_roundtrip(a.host_ports[8081], a.host_ports[8081], "readings-value")
    say(f"schema registry on the published port 8081: an Avro schema registered (id {sid}) and read back")
    ok, out = a.healthy()
    check(ok, f"podman healthcheck run: {out}")
    say(f"podman healthcheck run: {out or 'healthy'}")
    nspid = re.search(r"^NSpid:\s+(.*)$", Path(f"/proc/{a.state()['Pid']}/status").read_text(), re.M)
    check(nspid is not None and nspid.group(1).split()[-1] == "1", f"strom is not PID 1 in its container: {nspid}")
    topics = podman("exec", a.name, "strom", "topic", "list").stdout.split()
    check({"kc", "ck"} <= set(topics), f"podman exec … strom topic list: {topics}")
    say("strom is PID 1 of its container; podman exec … strom topic list lists kc and ck")
    took, code = a.stop()
    figure("podman stop (SIGTERM -> exit)", f"{took * 1000:.0f} ms, exit code {code}")
    check(code == 0, f"exit code {code} after podman stop")
    logs = a.logs()
    check("shutdown complete" in logs, "no 'shutdown complete' in the broker log")
    figure("broker shutdown (SIGTERM logged -> shutdown complete)", f"{log_ms(logs, 'signal=', 'shutdown complete'):.0f} ms")
    check('signal="SIGTERM"' in logs, "the broker did not log SIGTERM")
    n_dirs, n, unclean = clean_markers(VOLUME)
    check(n >= 54 and not unclean, f"{n_dirs} partition directories, without a clean-shutdown marker: {unclean}")
    say(f"clean-shutdown marker in all {n_dirs} partition directories of the volume ({n} of topics)")
    utc = re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z ", logs, re.M)
    check(utc is not None, "log lines do not start with a UTC timestamp")
    a.rm()

    b = Container("restart", env=a.env, volume=VOLUME)
    b.host_ports = a.host_ports
    ready = b.start()
    figure("container start to ready (podman run -> /readyz 200, the volume of the first run)", f"{ready * 1000:.0f} ms")
    logs = b.logs()
    figure("broker startup with that data (first log line -> serving)", f"{log_ms(logs, 'open files', 'strom is serving'):.0f} ms")
    opened = re.search(r"opened partition logs.*partitions=(\d+) clean=(\d+) recovered=(\d+)", logs)
    check(opened is not None, "no 'opened partition logs' line")
    total, clean, recovered = map(int, opened.groups())
    check(recovered == 0 and clean == total == n, f"restart after podman stop: {opened.group(0)}")
    say(f"restart: {clean} of {total} partitions reopened clean, none recovered (no tail scan)")
    got = kcat("-C", "-b", b.bootstrap, "-t", "kc", "-p", "0", "-o", "beginning", "-e", "-q").stdout
    check(got == "".join(f"kcat-{i}\n" for i in range(1000)), "records of the first run are not all back")
    confluent_resume(b.bootstrap, "ck", "g1", 3000, 10)
    say("restart: 1,000 kcat records back; group g1 kept its offsets and read only the 10 new records")
    took, code = b.stop()
    check(code == 0, f"exit code {code}")
    b.rm()


def apache_kafka_compose():
    """apache/kafka's docker/examples/docker-compose-files/single-node/plaintext, with
    the image changed. The host ports are free ones, so the advertised host listener
    names the mapped port; everything else is as in the compose file."""
    c = Container("kafka-env", ports=(9092, 19092, 9644))
    host = c.host_ports[9092]
    c.env = [
        "KAFKA_NODE_ID=1",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
        f"KAFKA_ADVERTISED_LISTENERS=PLAINTEXT_HOST://localhost:{host},PLAINTEXT://broker:19092",
        "KAFKA_PROCESS_ROLES=broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS=1@broker:29093",
        "KAFKA_LISTENERS=CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092",
        "KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER",
        "CLUSTER_ID=4L6g3nShT-eMCtK--X86sw",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=0",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR=1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR=1",
        "KAFKA_LOG_DIRS=/tmp/kraft-combined-logs",
    ]
    ready = c.start()
    figure("container start to ready (apache/kafka compose environment)", f"{ready * 1000:.0f} ms")
    logs = c.logs()
    check("configuration ignored" not in logs, "a KAFKA_* setting was reported unknown:\n" + logs)
    # (offsets.topic.replication.factor, transaction.state.log.* and
    # share.coordinator.state.topic.* are acted on: they shape __consumer_offsets,
    # __transaction_state and __share_group_state.)
    check("share.coordinator.state.topic" not in logs, "share.coordinator.* reported as without effect:\n" + logs)
    for key in (
        "controller.quorum.voters",
        "listener CONTROLLER://:29093",
    ):
        check(key in logs, f"{key} was not reported as accepted without effect")
    check("cluster_id=4L6g3nShT-eMCtK--X86sw" in logs, "CLUSTER_ID not used")
    check("data_dir=/tmp/kraft-combined-logs" in logs, "KAFKA_LOG_DIRS not used")
    check(kcat_brokers(c.bootstrap) == [f"localhost:{host}"], f"PLAINTEXT_HOST advertises {kcat_brokers(c.bootstrap)}")
    inner = kcat_brokers(f"127.0.0.1:{c.host_ports[19092]}")
    check(inner == ["broker:19092"], f"PLAINTEXT advertises {inner}")
    say("PLAINTEXT_HOST advertises localhost, PLAINTEXT advertises broker:19092; CONTROLLER not bound")
    kcat_roundtrip(c.bootstrap, "compose", 100)
    ok, out = c.healthy()
    check(ok, f"podman healthcheck run: {out}")
    took, code = c.stop()
    check(code == 0, f"exit code {code}")
    say("apache/kafka compose environment: served, healthy, stopped cleanly")
    c.rm()


def compose_environment():
    """The `environment:` of the service in compose.yaml (the README's compose file),
    read with a small parser: `KEY: value` lines, quotes removed."""
    env, inside = {}, False
    for line in (ROOT / "compose.yaml").read_text().splitlines():
        if re.fullmatch(r"\s+environment:\s*", line):
            inside = True
            continue
        m = re.fullmatch(r"\s{6}([A-Z_]+):\s*(.*?)\s*(#.*)?", line)
        if inside and m:
            env[m.group(1)] = m.group(2).strip("\"'")
        elif inside and line.strip() and not line.strip().startswith("#"):
            break
    check(env, "no environment in compose.yaml")
    return env


def readme_compose():
    """compose.yaml's environment in a container (ports mapped as compose maps them;
    the advertised host port follows the free port used here)."""
    c = Container("compose", ports=(9092, 19092, 9644))
    env = compose_environment()
    adv = env.get("KAFKA_ADVERTISED_LISTENERS", "")
    check("localhost:9092" in adv, f"compose.yaml advertises {adv!r}")
    env["KAFKA_ADVERTISED_LISTENERS"] = adv.replace("localhost:9092", f"localhost:{c.host_ports[9092]}")
    c.env = [f"{k}={v}" for k, v in env.items()]
    c.start()
    logs = c.logs()
    check("configuration ignored" not in logs, "compose.yaml sets a setting reported unknown:\n" + logs)
    check(kcat_brokers(c.bootstrap) == [f"localhost:{c.host_ports[9092]}"], "compose.yaml: host listener")
    check(kcat_brokers(f"127.0.0.1:{c.host_ports[19092]}") == ["strom:19092"], "compose.yaml: compose-network listener")
    md = json.loads(kcat("-L", "-J", "-b", c.bootstrap, "-t", "auto").stdout)
    parts = len(md["topics"][0]["partitions"])
    check(parts == int(env.get("KAFKA_NUM_PARTITIONS", "1")), f"auto-created topic has {parts} partitions")
    ok, out = c.healthy()
    check(ok, f"podman healthcheck run: {out}")
    took, code = c.stop()
    check(code == 0, f"exit code {code}")
    say(f"compose.yaml environment: listeners as documented, {parts} partitions per new topic, healthy")
    c.rm()


def cluster_environments():
    """`environment:` of every service of compose.cluster.yaml, by service name."""
    envs, service, inside = {}, None, False
    for line in (ROOT / "compose.cluster.yaml").read_text().splitlines():
        m = re.fullmatch(r"  ([a-z0-9-]+):\s*", line)
        if m:
            service, inside = m.group(1), False
            continue
        if re.fullmatch(r"\s+environment:\s*", line):
            inside = True
            envs.setdefault(service, {})
            continue
        m = re.fullmatch(r"\s{6}([A-Z_]+):\s*(.*?)\s*(#.*)?", line)
        if inside and m:
            envs[service][m.group(1)] = m.group(2).strip("\"'")
        elif inside and line.strip() and not line.strip().startswith("#"):
            inside = False
    check(len(envs) == 3, f"compose.cluster.yaml: {sorted(envs)}")
    return envs


class HostContainer(Container):
    """A container on the host's network (the three of a cluster must reach each other
    and podman here has no DNS between containers): its listeners on free host ports."""

    def __init__(self, name, env, http_port, volume):
        super().__init__(name, env=env, ports=(), volume=volume)
        self.http_port = http_port

    def start(self):
        args = ["run", "-d", "--name", self.name, "--network", "host"]
        for kv in self.env:
            args += ["-e", kv]
        args += ["-v", f"{self.volume}:/var/lib/strom"]
        podman(*args, IMAGE)

    def wait_ready(self, timeout=60):
        self.host_ports = {9644: self.http_port}
        super().wait_ready(timeout)


def kcat_view(bootstrap):
    md = json.loads(kcat("-L", "-J", "-b", bootstrap).stdout)
    brokers = sorted(b["id"] for b in md["brokers"])
    leaders = {(t["topic"], p["partition"]): p["leader"] for t in md["topics"] for p in t["partitions"]}
    return brokers, leaders


def eventually(what, f, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = f()
            if v:
                return v
        except (Failed, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.2)
    raise Failed(f"{what}: not within {timeout} s")


def compose_cluster():
    """compose.cluster.yaml's three services as one cluster on the host network."""
    envs = cluster_environments()
    names = sorted(envs)
    ports = {(svc, p): free_port() for svc in names for p in (9092, 19092, 9093)}
    https = {svc: free_port() for svc in names}
    registries = {svc: free_port() for svc in names}

    def local(svc, text):
        # `strom-N:port` and `:port` become 127.0.0.1 and that service's free port.
        text = re.sub(r"(strom-\d):(\d+)", lambda m: f"127.0.0.1:{ports[(m.group(1), int(m.group(2)))]}", text)
        text = re.sub(r"//:(\d+)", lambda m: f"//127.0.0.1:{ports[(svc, int(m.group(1)))]}", text)
        return re.sub(r"localhost:\d+", f"127.0.0.1:{ports[(svc, 9092)]}", text)

    nodes = []
    for svc in names:
        env = {k: local(svc, v) for k, v in envs[svc].items()}
        env["STROM_STROM_HTTP_LISTENER"] = f"127.0.0.1:{https[svc]}"
        env["STROM_STROM_SCHEMA_REGISTRY_LISTENER"] = f"127.0.0.1:{registries[svc]}"
        volume = f"{VOLUME}-{svc}"
        podman("volume", "rm", "-f", volume, check_rc=False)
        nodes.append(HostContainer(svc, [f"{k}={v}" for k, v in env.items()], https[svc], volume))
    started = time.monotonic()
    for n in nodes:
        n.start()
    for n in nodes:
        n.wait_ready()
    figure("3-container cluster start to ready (compose.cluster.yaml)", f"{(time.monotonic() - started) * 1000:.0f} ms")
    boot = [f"127.0.0.1:{ports[(svc, 9092)]}" for svc in names]
    eventually("three brokers listed by every broker",
               lambda: all(kcat_view(b)[0] == [1, 2, 3] for b in boot))
    kcat("-P", "-b", boot[0], "-t", "cluster", "-p", "0", input="warm\n")

    def led():
        mine = {k: v for k, v in kcat_view(boot[1])[1].items() if k[0] == "cluster" and v > 0}
        return mine if len(mine) == 3 else None

    leaders = eventually("topic cluster with 3 led partitions", led)
    # One registry across the containers: written through node 1, read through node 3.
    sid = registry_roundtrip(registries[names[0]], registries[names[2]], "cluster-value")
    say(f"schema registry: registered through {names[0]} (id {sid}), read back through {names[2]}")
    kcat("-P", "-b", boot[1], "-t", "cluster", "-K:", input="".join(f"k{i}:r{i}\n" for i in range(30)))
    got = kcat("-C", "-b", boot[2], "-t", "cluster", "-o", "beginning", "-e", "-q").stdout.split()
    check(len(got) == 31, f"consumed {len(got)} of 31 records from the cluster")
    # Kill node 2's container; the others fence it, and its partitions fail over to an
    # in-sync replica (RF=3, min.insync.replicas=2): every partition keeps serving.
    victim = nodes[1]
    podman("kill", victim.name)
    killed_at = time.monotonic()
    eventually("node 2 fenced", lambda: kcat_view(boot[0])[0] == [1, 3], timeout=30)
    figure("killed container fenced after", f"{(time.monotonic() - killed_at) * 1000:.0f} ms")
    eventually("every partition led by a live broker",
               lambda: all(l in (1, 3) for (t, _), l in kcat_view(boot[0])[1].items() if t == "cluster"),
               timeout=30)
    figure("killed container's partitions led elsewhere after", f"{(time.monotonic() - killed_at) * 1000:.0f} ms")
    for p in range(3):
        # kcat's librdkafka produces with acks=all: two in-sync replicas acknowledge.
        kcat("-P", "-b", boot[0], "-t", "cluster", "-p", str(p), input="after\n")
    got = kcat("-C", "-b", boot[2], "-t", "cluster", "-o", "beginning", "-e", "-q").stdout.split()
    check(len(got) == 34, f"with node 2 down: consumed {len(got)} of 34 records")
    # Back on its volume: it catches up and rejoins every ISR.
    podman("rm", "-f", victim.name, check_rc=False)
    victim.start()
    victim.wait_ready()
    rejoined_at = time.monotonic()

    def full_isrs():
        md = json.loads(kcat("-L", "-J", "-b", boot[2]).stdout)
        isrs = [len(p.get("isrs", [])) for t in md["topics"] if t["topic"] == "cluster" for p in t["partitions"]]
        return len(isrs) == 3 and all(n == 3 for n in isrs)

    eventually("node 2 back in every ISR of topic cluster", full_isrs, timeout=60)
    figure("restarted container back in every ISR after", f"{(time.monotonic() - rejoined_at) * 1000:.0f} ms")
    got = kcat("-C", "-b", boot[1], "-t", "cluster", "-o", "beginning", "-e", "-q").stdout.split()
    check(len(got) == 34, f"after the rejoin: {len(got)} records")
    say("compose.cluster.yaml: 3 containers (RF=3), one killed: every partition kept serving; it rejoined the ISRs")
    for n in nodes:
        n.rm()
        podman("volume", "rm", "-f", n.volume, check_rc=False)


def main():
    setup()
    # One run at a time per cache: the containers, volume and image names are fixed.
    lock = open(CACHE / "lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    cleanup()
    build_base()
    build_image()
    try:
        image_defaults()
        apache_kafka_compose()
        readme_compose()
        compose_cluster()
    except Failed:
        for c in podman("ps", "-a", "--format", "{{.Names}}", check_rc=False).stdout.split():
            if c.startswith(PREFIX):
                print(f"---- logs of {c} (last 40 lines)")
                print("\n".join(podman("logs", c, check_rc=False).stderr.splitlines()[-40:]))
        raise
    finally:
        cleanup()
        # Earlier builds' untagged images (the base and the tagged image stay).
        podman("image", "prune", "-f", check_rc=False)
    say("figures:")
    for name, value in FIGURES:
        print(f"  {name}: {value}")
    say(f"container test OK in {time.monotonic() - T0:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"[container-test] FAILED: {e}", file=sys.stderr)
        sys.exit(1)
