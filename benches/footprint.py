#!/usr/bin/env python3
"""Broker footprint: idle RSS, time to ready with 1,000 partitions on disk (after a clean
stop and after kill -9), and 10,000 partitions created and produced to, with the memory
each idle partition costs.

    cargo build --release --bin strom
    python3 benches/footprint.py [--strom target/release/strom] [--partitions 10000]

Uses only `strom` itself (serve, topic create, bench) and the standard library; every
broker it starts listens on a free 127.0.0.1 port with a temporary data dir, removed
afterwards. "Ready" is the first ApiVersions answer (what a client needs).
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# About 3 open files per partition: as for Kafka, many partitions need a high limit.
NOFILE = 65536


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, NOFILE), max(hard, NOFILE)))
    except (ValueError, OSError):
        pass  # not root: the broker raises its soft limit to the hard one itself
REPO = os.path.dirname(HERE)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def api_versions_ok(port):
    """One ApiVersions v0 round trip; True when the broker answered error_code 0."""
    req = struct.pack(">hhih", 18, 0, 1, -1)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(struct.pack(">i", len(req)) + req)
            size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
            body = s.recv(size, socket.MSG_WAITALL)
            return len(body) >= 6 and struct.unpack(">h", body[4:6])[0] == 0
    except OSError:
        return False


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


STARTED = []


class Broker:
    def __init__(self, strom, data):
        self.strom, self.data, self.port, self.proc = strom, data, free_port(), None
        STARTED.append(self)

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        """Starts the broker; returns milliseconds until its first ApiVersions answer."""
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.strom, "serve", "--listeners", "PLAINTEXT://" + self.bootstrap, "--log-dirs", self.data,
             "--override", "strom.http.listener=127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(os.path.dirname(self.data), "strom.log"), "ab"),
            preexec_fn=raise_nofile)
        deadline = t0 + 120
        while not api_versions_ok(self.port):
            if self.proc.poll() is not None:
                sys.exit("broker exited with %s (log: %s)" % (self.proc.returncode, os.path.dirname(self.data)))
            if time.monotonic() > deadline:
                sys.exit("broker not ready after 120 s")
            time.sleep(0.002)
        return (time.monotonic() - t0) * 1000

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=120)

    def settle_rss(self, seconds=2.0):
        time.sleep(seconds)
        return rss_kib(self.proc.pid)


def strom_cli(strom, *args):
    r = subprocess.run([strom, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("strom %s failed:\n%s" % (" ".join(args), r.stdout[-2000:]))
    return r.stdout


def fill(strom, bootstrap, topic, partitions):
    """Creates `topic` and produces to every partition (one 1 KiB-record batch each, at least)."""
    strom_cli(strom, "topic", "create", topic, "--partitions", str(partitions), "-b", bootstrap)
    out = strom_cli(strom, "bench", "-b", bootstrap, "--topic", topic, "--keep-topic", "--consumers", "0",
                    "--record-size", "1024", "--batch-size", "1024", "--duration", str(max(2.0, partitions / 4000)),
                    "--json")
    summary = json.loads(out[out.index("{"):])
    if summary["errors"]:
        sys.exit("producing to %s: %s" % (topic, summary["first_error"]))
    return summary["produce"]["records"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strom", default=os.path.join(REPO, "target", "release", "strom"))
    ap.add_argument("--partitions", type=int, default=10000, help="partitions for the many-partitions test")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="strom-footprint-")
    out = {}
    try:
        data = os.path.join(work, "data")
        b = Broker(a.strom, data)
        out["first_start_ms"] = round(b.start(), 1)
        out["idle_rss_mib"] = round(b.settle_rss() / 1024, 1)
        records = fill(a.strom, b.bootstrap, "fp-1000", 1000)
        out["records_in_1000_partitions"] = records
        b.stop()
        out["ready_after_clean_stop_1000_partitions_ms"] = round(b.start(), 1)
        b.stop(signal.SIGKILL)
        out["ready_after_kill9_1000_partitions_ms"] = round(b.start(), 1)
        out["idle_rss_1000_partitions_mib"] = round(b.settle_rss() / 1024, 1)
        b.stop()
        shutil.rmtree(data)

        many = Broker(a.strom, data)
        many.start()
        before = many.settle_rss()
        per_topic = 1000
        produced = 0
        for t in range(a.partitions // per_topic):
            produced += fill(a.strom, many.bootstrap, "fp-many-%d" % t, per_topic)
        after = many.settle_rss(3.0)
        out["many_partitions"] = a.partitions
        out["many_partitions_records"] = produced
        out["many_partitions_rss_mib"] = round(after / 1024, 1)
        out["rss_per_idle_partition_kib"] = round((after - before) / a.partitions, 1)
        with open("/proc/%d/status" % many.proc.pid) as f:
            threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
        out["many_partitions_open_fds"] = len(os.listdir("/proc/%d/fd" % many.proc.pid))
        with open("/proc/%d/limits" % many.proc.pid) as f:
            out["open_files_limit"] = next(line.split()[3] for line in f if line.startswith("Max open files"))
        out["broker_threads"] = threads
        many.stop()
        out["ready_after_clean_stop_many_partitions_ms"] = round(many.start(), 1)
        many.stop()
    finally:
        for b in STARTED:
            if b.proc is not None and b.proc.poll() is None:
                b.proc.kill()
                b.proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print("%-45s %s" % (k, v))


if __name__ == "__main__":
    main()
