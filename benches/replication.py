#!/usr/bin/env python3
"""What replication costs (issue 14): `strom bench` against one node with acks=1, then
against `strom dev-cluster 3` with replication factor 3, min.insync.replicas=2 and
acks=all, in one run on this machine, the same load each time:

  throughput   1 producer (one connection per partition leader), 3 partitions, 1 KiB
               records, 16 KiB batches, as fast as possible for --duration seconds;
  latency      the same at a fixed 20 MB/s (19,531 records/s): produce latency p50/p99.

It prints each figure and the cluster's acks=all throughput as a fraction of the single
node's acks=1. All processes share this machine's cores: on 2 cores the three brokers,
their replication and the load generator compete, so the ratio is a floor, not what
three machines would do.

Usage: python3 benches/replication.py [--strom-bin target/release/strom] [--duration 10]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port_base():
    for base in range(31092, 40000, 100):
        try:
            for off in (0, 1, 2, 10, 11, 12, 20, 21, 22):
                s = socket.socket()
                s.bind(("127.0.0.1", base + off))
                s.close()
            return base
        except OSError:
            continue
    raise SystemExit("no free ports")


def wait_port(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("broker exited early (%s)" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("port %d not open within %d s" % (port, timeout))


def wait_cluster(strom, bootstrap, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("dev-cluster exited early (%s)" % proc.returncode)
        out = subprocess.run([strom, "cluster", "info", "-o", "json", "-b", bootstrap, "--timeout-ms", "3000"],
                             capture_output=True, text=True)
        if out.returncode == 0:
            v = json.loads(out.stdout)
            live = [b for b in v["brokers"] if not b["fenced"]]
            if v.get("quorum") and v["quorum"]["leader_id"] > 0 and len(live) == 3:
                return
        time.sleep(0.2)
    raise SystemExit("cluster not ready within %d s" % timeout)


def bench(strom, bootstrap, topic, acks, duration, rate=0):
    cmd = [strom, "bench", "-b", bootstrap, "--topic", topic, "--partitions", "3", "--producers", "1",
           "--consumers", "0", "--record-size", "1024", "--batch-size", "16384", "--acks", str(acks),
           "--duration", str(duration), "--json"]
    if rate:
        cmd += ["--rate", str(rate)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    if out.returncode != 0:
        raise SystemExit("bench failed: %s\n%s" % (" ".join(cmd), out.stderr[-2000:]))
    r = json.loads(out.stdout)
    if r["errors"]:
        raise SystemExit("bench reported %d errors (first: %s)" % (r["errors"], r["first_error"]))
    return r["produce"]


def line(label, p):
    lat = p["latency_ms"]
    return "%-36s %9.0f rec/s %7.1f MB/s   produce latency p50 %.2f ms p99 %.2f ms max %.2f ms" % (
        label, p["records_per_sec"], p["mb_per_sec"], lat["p50"], lat["p99"], lat["max"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strom-bin", default=os.path.join(ROOT, "target", "release", "strom"))
    ap.add_argument("--duration", type=float, default=10)
    args = ap.parse_args()
    strom = os.path.abspath(args.strom_bin)
    rate = 20_000_000 // 1024  # 20 MB/s of 1 KiB records
    tmp = tempfile.mkdtemp(prefix="strom-repl-bench-")
    results = {}
    base = free_port_base()
    try:
        # One node, acks=1.
        log = open(os.path.join(tmp, "single.log"), "w")
        single = subprocess.Popen([strom, "serve", "--listeners", "PLAINTEXT://127.0.0.1:%d" % base,
                                   "--log-dirs", os.path.join(tmp, "single")], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_port(base, single)
            b = "127.0.0.1:%d" % base
            results["single"] = bench(strom, b, "single-max", 1, args.duration)
            results["single_20"] = bench(strom, b, "single-20", 1, args.duration, rate)
        finally:
            single.send_signal(signal.SIGTERM)
            single.wait(timeout=30)
        # Three nodes, RF 3, min.insync.replicas=2, acks=all.
        log = open(os.path.join(tmp, "cluster.log"), "w")
        cluster = subprocess.Popen([strom, "dev-cluster", "3", "--dir", os.path.join(tmp, "cluster"),
                                    "--base-port", str(base), "--override", "min.insync.replicas=2"],
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            b = "127.0.0.1:%d" % base
            wait_cluster(strom, b, cluster)
            results["cluster"] = bench(strom, b, "cluster-max", -1, args.duration)
            results["cluster_20"] = bench(strom, b, "cluster-20", -1, args.duration, rate)
        finally:
            cluster.send_signal(signal.SIGTERM)
            cluster.wait(timeout=60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(line("1 node, acks=1, unlimited", results["single"]))
    print(line("3 nodes RF=3, acks=all, unlimited", results["cluster"]))
    print(line("1 node, acks=1, 20 MB/s", results["single_20"]))
    print(line("3 nodes RF=3, acks=all, 20 MB/s", results["cluster_20"]))
    print("3-node RF=3 acks=all throughput = %.2f x single-node acks=1" %
          (results["cluster"]["mb_per_sec"] / results["single"]["mb_per_sec"]))


if __name__ == "__main__":
    main()
