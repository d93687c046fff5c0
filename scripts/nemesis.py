#!/usr/bin/env python3
"""Fault injection against a Strom cluster, checked the way Jepsen checks Kafka (issue 14).

Starts N `strom serve` nodes (every node broker and controller; default 3), creates a
topic with replication factor 3 and min.insync.replicas=2, and runs a workload while a
nemesis injects faults:

  producers  confluent-kafka (librdkafka) and kafka-python, both idempotent with
             acks=all, each writing unique values "p<producer>-<seq>" round-robin over
             the partitions; every value is recorded as sent, then acknowledged (with
             the partition and offset the ack reported), failed, or unknown;
  consumers  two group consumers, each in a group of its own: confluent-kafka (auto-
             commit) and kafka-python (explicit synchronous commits once a second),
             recording every (partition, offset, value) they polled and every commit the
             coordinator acknowledged;
  watchers   one per consumer group, reading the group's committed offsets twice a
             second (OffsetFetch, from the harness's own wire client);
  committer  a standalone confluent-kafka client committing an increasing counter as the
             offset of every partition for a group of its own, and reading it back
             (OffsetFetch): what the coordinator acknowledged must never go backwards.

Faults, one at a time, each healed before a short pause and the next one (targets chosen
from Metadata and DescribeQuorum at that moment: the leader of a partition of the topic,
a follower, or the metadata quorum's leader):

  kill       kill -9, restarted after a few seconds
  shutdown   SIGTERM: a controlled shutdown (the node hands the leadership of its
             partitions to another in-sync replica, then exits), waited for (30 s at
             most, then kill -9: a finding), restarted after a few seconds and waited
             for until it is registered and unfenced again (the fault's window)
  pause      SIGSTOP, SIGCONT after 1-6 s (below and above broker.session.timeout.ms)
  isolate    a network partition between one node and the others (both directions,
             client and controller traffic between nodes): the majority/minority split,
             aimed at a partition leader, a follower or the controller
  cut        a partition between two chosen nodes only (each still sees the third)

The kinds run in shuffled rounds (--kinds; default all eleven of KINDS); in the first
round the controlled shutdown of a leader is among the first four faults, so that every
run of four faults or more has one, whatever the seed.

Network partitions need root: the harness moves itself into a network namespace of its
own (unshare), gives each node a namespace of its own on a bridge there (10.77.0.<id>), and
cuts the link between two nodes with blackhole routes inside their namespaces. Nothing
outside the harness's namespace is touched, and everything disappears with the harness.
Without root (or with --no-netns) the nodes run on 127.0.0.1 and network faults are
skipped (said so at start).

After the last fault everything is healed, the producers drain, the cluster must settle
(every partition led, every ISR full), and a fresh confluent-kafka consumer and a fresh
kafka-python consumer read every partition from its start to its high watermark. The
checker then requires:

  lost            acknowledged values missing from the final read: 0
  duplicated      values present more than once in the final read: 0
  inconsistent    an acknowledged value read at another offset than its ack reported, an
                  acknowledged offset holding another value, two values read at one offset
                  (the group consumers, the two final readers), a value never sent: 0
  consumer-lost   values a group consumer polled that the final read lacks: 0
  poll skips      a group consumer jumping over offsets that exist: 0
  stalled         a group consumer not reaching the high watermark of every partition
                  within 60 s of the producers' drain: 0
  gaps            offsets per partition contiguous from 0 to the high watermark
  commits back    a group's committed offset (OffsetFetch: the committer's own, the
                  watchers', and a last one after the run) read back lower than the last
                  one acknowledged to a commit before it was asked: 0 (the committer and
                  both consumer groups)
  offsets back    a consumer group's committed offset read back lower than one read back
                  before (unless a lower commit was acknowledged in between, a client
                  retrying an older commit): 0. The watchers ask the leader of the group's
                  __consumer_offsets partition with the newest leader epoch any node
                  reports, before and after the read (a coordinator deposed without knowing
                  it yet answers from what it held: stale, not counted), so this catches
                  an offset commit visible before it was replicated and then lost
  commits missing a consumer group's committed offset after the run not above 0 for a
                  partition that has data: 0
  shutdown errors errors reported to the confluent-kafka producer (delivery reports,
                  error callbacks) within a controlled shutdown's window, from the SIGTERM
                  until the restarted node is registered and unfenced, other than failed
                  attempts to connect to the stopped node while it was down: 0
  shutdown failed a node not exiting within 30 s of its SIGTERM, exiting with a status
                  other than 0, or not registered and unfenced within 60 s of its
                  restart: 0
  replicas        every replica's log (the record batches of its segment files) byte-
                  identical below the high watermark, and all ending at the same offset
                  (__consumer_offsets, which each replica compacts on its own once a
                  segment is sealed, as a clean shutdown does: the same records at the
                  offsets both hold, and the same latest record per key)
  node exits      no node exited without being killed or shut down
  settled         within --settle-timeout of the last heal, every partition of the topic
                  and of __consumer_offsets led, with every replica in its ISR

It prints the faults injected by kind (and how many hit the coordinator of each consumer
group: the leader of the group's __consumer_offsets partition), the counts per client, and
the failover time: from a kill -9 of a partition's leader until a record sent after the
kill to that partition is acknowledged (p50/max), the same after a pause or isolation of a
leader, and the produce pause of a controlled shutdown (from the SIGTERM), with the errors
each producer saw within the shutdown windows.

CI (./scripts/test.sh nemesis, and part of the cluster suite; ~2 min on 2 cores, debug):
    compat-tests/.venv/bin/python scripts/nemesis.py --strom-bin target/debug/strom
A campaign (by hand; ~20 min, or ./scripts/test.sh nemesis --faults 150 --duration 3600):
    compat-tests/.venv/bin/python scripts/nemesis.py --faults 150 --duration 3600
Exit status 0 when every check passed, 1 when a check failed, 2 when the harness could
not run (cluster did not start, ...). On failure the data directories, node logs and the
history (history.json) are kept and their path printed.
"""

import argparse
import collections
import ctypes
import json
import logging
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

TOPIC = "nemesis"
SUBNET = "10.77.0"  # inside the harness's own network namespace only
CLIENT_PORT, CONTROLLER_PORT = 9092, 9093
COMPACTED = {"__consumer_offsets"}  # each replica cleans these on its own

T0 = time.monotonic()
# The clients' own logs (librdkafka, kafka-python) go to <workdir>/clients.log.
CLIENT_LOG = logging.getLogger("clients")


def now():
    return time.monotonic() - T0


def say(msg):
    print("[%7.1fs] %s" % (now(), msg), flush=True)


class HarnessError(Exception):
    """The harness could not do its job (not a finding about the broker)."""


# --------------------------------------------------------------------------------------
# Network: a namespace per node on a bridge, or plain loopback without partitions.


def run(cmd, check=True, timeout=10):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise HarnessError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r


class Net:
    """Where the nodes listen, and the partitions between them."""

    def __init__(self, nodes, use_netns, max_seconds):
        self.nodes = nodes
        self.netns = False
        self.holders = {}  # node id -> pid of the process holding its namespace
        self.blocked = set()  # (a, b) with a < b
        self.reason = ""
        if use_netns:
            try:
                self._setup(max_seconds)
                self.netns = True
            except HarnessError as e:
                self.reason = str(e)
        else:
            self.reason = "--no-netns"
        if not self.netns:
            self.ports = self._free_ports(2 * len(nodes))

    def _setup(self, max_seconds):
        if os.geteuid() != 0:
            raise HarnessError("not root (network namespaces need CAP_SYS_ADMIN/CAP_NET_ADMIN)")
        for tool in ("ip", "unshare", "nsenter", "setpriv"):
            if shutil.which(tool) is None:
                raise HarnessError("%s not found (iproute2 / util-linux)" % tool)
        # A namespace of our own: the bridge, the veths and the routes live and die here.
        # Called before any thread exists (unshare(CLONE_NEWNET) is per thread).
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
            raise HarnessError("unshare(CLONE_NEWNET): %s" % os.strerror(ctypes.get_errno()))
        run(["ip", "link", "set", "lo", "up"])
        run(["ip", "link", "add", "nem0", "type", "bridge"])
        run(["ip", "addr", "add", "%s.254/24" % SUBNET, "dev", "nem0"])
        run(["ip", "link", "set", "nem0", "up"])
        mine = os.readlink("/proc/self/ns/net")
        for i in self.nodes:
            # The holder keeps node i's namespace alive across restarts of the node; it
            # dies with the harness (pdeathsig) or after max_seconds at the latest.
            h = subprocess.Popen(["unshare", "--net", "setpriv", "--pdeathsig", "KILL", "--",
                                  "sleep", str(int(max_seconds))])
            self.holders[i] = h
            deadline = time.monotonic() + 5
            while True:
                try:
                    if os.readlink("/proc/%d/ns/net" % h.pid) != mine and \
                            os.path.basename(os.readlink("/proc/%d/exe" % h.pid)) == "sleep":
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or h.poll() is not None:
                    raise HarnessError("could not create a network namespace for node %d" % i)
                time.sleep(0.01)
            run(["ip", "link", "add", "nemh%d" % i, "type", "veth", "peer", "name", "nemn%d" % i])
            run(["ip", "link", "set", "nemn%d" % i, "netns", str(h.pid)])
            run(["ip", "link", "set", "nemh%d" % i, "master", "nem0"])
            run(["ip", "link", "set", "nemh%d" % i, "up"])
            for cmd in (["ip", "link", "set", "lo", "up"],
                        ["ip", "link", "set", "nemn%d" % i, "name", "eth0"],
                        ["ip", "addr", "add", "%s.%d/24" % (SUBNET, i), "dev", "eth0"],
                        ["ip", "link", "set", "eth0", "up"]):
                run(self.enter(i) + cmd)
        # The bridge forwards once its ports are up: wait until every node answers ARP/TCP
        # (a refused connection is an answer).
        deadline = time.monotonic() + 10
        for i in self.nodes:
            while True:
                try:
                    socket.create_connection((self.host(i), 1), timeout=0.5).close()
                    break
                except ConnectionRefusedError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise HarnessError("node %d's namespace unreachable over the bridge" % i)
                    time.sleep(0.1)

    @staticmethod
    def _free_ports(n):
        socks = []
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
        for s in socks:
            s.close()
        return ports

    def enter(self, i):
        """Command prefix that runs something in node i's namespace."""
        if i not in self.holders:
            return []
        return ["nsenter", "--net=/proc/%d/ns/net" % self.holders[i].pid, "--"]

    def host(self, i):
        return "%s.%d" % (SUBNET, i) if self.netns else "127.0.0.1"

    def port(self, i):
        return CLIENT_PORT if self.netns else self.ports[2 * self.nodes.index(i)]

    def ctrl_port(self, i):
        return CONTROLLER_PORT if self.netns else self.ports[2 * self.nodes.index(i) + 1]

    def addr(self, i):
        return "%s:%d" % (self.host(i), self.port(i))

    def block(self, a, b):
        """Drops every packet between nodes a and b (both directions)."""
        a, b = min(a, b), max(a, b)
        if (a, b) in self.blocked:
            return
        run(self.enter(a) + ["ip", "route", "add", "blackhole", "%s/32" % self.host(b)])
        run(self.enter(b) + ["ip", "route", "add", "blackhole", "%s/32" % self.host(a)])
        self.blocked.add((a, b))

    def unblock(self, a, b):
        a, b = min(a, b), max(a, b)
        if (a, b) not in self.blocked:
            return
        run(self.enter(a) + ["ip", "route", "del", "blackhole", "%s/32" % self.host(b)], check=False)
        run(self.enter(b) + ["ip", "route", "del", "blackhole", "%s/32" % self.host(a)], check=False)
        self.blocked.discard((a, b))

    def heal(self):
        for a, b in sorted(self.blocked):
            self.unblock(a, b)

    def close(self):
        for h in self.holders.values():
            if h.poll() is None:
                h.kill()
            h.wait()


# --------------------------------------------------------------------------------------
# Kafka wire protocol: just Metadata, to see leaders and ISRs from one chosen node.


def _kafka_call(addr, api_key, version, body, timeout):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        header = struct.pack(">hhih", api_key, version, 1, 7) + b"nemesis"
        msg = header + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        buf = b""
        while len(buf) < 4:
            chunk = s.recv(4 - len(buf))
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
        size = struct.unpack(">i", buf)[0]
        data = bytearray()
        while len(data) < size:
            chunk = s.recv(min(65536, size - len(data)))
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        return bytes(data[4:])  # after the correlation id


class _Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.i)
        self.i += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.b[self.i:self.i + n].decode()
        self.i += n
        return s

    def array(self, item):
        n = self.take(">i")
        return [item() for _ in range(max(n, 0))]


def metadata(addr, timeout=2.0):
    """Metadata v4 (all topics) from one broker: {topic: {partition: (leader, replicas, isr)}}."""
    body = struct.pack(">ib", -1, 0)
    r = _Reader(_kafka_call(addr, 3, 4, body, timeout))
    r.take(">i")  # throttle
    r.array(lambda: (r.take(">i"), r.string(), r.take(">i"), r.string()))
    r.string()  # cluster id
    r.take(">i")  # controller id
    out = {}

    def partition():
        err, idx, leader = r.take(">h"), r.take(">i"), r.take(">i")
        replicas = r.array(lambda: r.take(">i"))
        isr = r.array(lambda: r.take(">i"))
        return idx, (leader, sorted(replicas), sorted(isr), err)

    def topic():
        err, name, _internal = r.take(">h"), r.string(), r.take(">b")
        parts = dict(r.array(partition))
        return name, parts, err

    for name, parts, err in r.array(topic):
        if err == 0:
            out[name] = parts
    return out


def leaders(addr, topic, timeout=1.0):
    """Metadata v7 of one topic from one broker: {partition: (leader, leader epoch)}."""
    t = topic.encode()
    body = struct.pack(">ih", 1, len(t)) + t + struct.pack(">b", 0)
    r = _Reader(_kafka_call(addr, 3, 7, body, timeout))
    r.take(">i")  # throttle
    r.array(lambda: (r.take(">i"), r.string(), r.take(">i"), r.string()))
    r.string()  # cluster id
    r.take(">i")  # controller id

    def partition():
        _err, idx, leader, epoch = r.take(">h"), r.take(">i"), r.take(">i"), r.take(">i")
        for _ in range(3):  # replicas, isr, offline replicas
            r.array(lambda: r.take(">i"))
        return idx, (leader, epoch)

    def one():
        err, name, _internal = r.take(">h"), r.string(), r.take(">b")
        return name, dict(r.array(partition)), err

    return next((parts for name, parts, err in r.array(one) if err == 0 and name == topic), {})


def offset_fetch(addr, group, topic, partitions, timeout=2.0):
    """OffsetFetch v2 from one broker: ({partition: committed offset, -1 for none}, error
    code: the answer's, or a partition's)."""
    g, t = group.encode(), topic.encode()
    body = (struct.pack(">h", len(g)) + g + struct.pack(">ih", 1, len(t)) + t +
            struct.pack(">i", len(partitions)) + b"".join(struct.pack(">i", p) for p in partitions))
    r = _Reader(_kafka_call(addr, 9, 2, body, timeout))

    def partition():
        idx, offset = r.take(">i"), r.take(">q")
        r.string()  # metadata
        return idx, offset, r.take(">h")

    out, errors = {}, []
    for _name, parts in r.array(lambda: (r.string(), r.array(partition))):
        for idx, offset, err in parts:
            if err:
                errors.append(err)
            else:
                out[idx] = offset
    return out, r.take(">h") or (errors[0] if errors else 0)


# --------------------------------------------------------------------------------------
# The cluster.


class Cluster:
    def __init__(self, strom, net, nodes, workdir, args):
        self.strom, self.net, self.nodes, self.dir, self.args = strom, net, nodes, workdir, args
        self.procs = {}
        self.state = {i: "down" for i in nodes}  # up | down | paused | stopping (SIGTERM sent)
        self.unexpected_exits = []  # (node, returncode, time)
        self.voters = ",".join("%d@%s:%d" % (i, net.host(i), net.ctrl_port(i)) for i in nodes)

    def log_path(self, i):
        return os.path.join(self.dir, "node%d.log" % i)

    def data_dir(self, i):
        return os.path.join(self.dir, "node%d" % i)

    def start(self, i):
        a = self.args
        net = self.net
        cmd = net.enter(i) + [
            "setpriv", "--pdeathsig", "KILL", "--",
            self.strom, "serve", "--node-id", str(i), "--log-dirs", self.data_dir(i),
            "--listeners", "PLAINTEXT://%s:%d,CONTROLLER://%s:%d" % (net.host(i), net.port(i), net.host(i), net.ctrl_port(i)),
            "--override", "process.roles=broker,controller",
            "--override", "controller.listener.names=CONTROLLER",
            "--override", "controller.quorum.voters=%s" % self.voters,
            "--override", "strom.http.listener=",
            "--override", "broker.session.timeout.ms=%d" % a.session_ms,
            "--override", "broker.heartbeat.interval.ms=%d" % a.heartbeat_ms,
            "--override", "replica.lag.time.max.ms=%d" % a.replica_lag_ms,
            "--override", "offsets.topic.num.partitions=%d" % a.offsets_partitions,
            "--override", "min.insync.replicas=2",
        ]
        log = open(self.log_path(i), "a")
        log.write("\n===== [%.1fs] harness: starting node %d =====\n" % (now(), i))
        log.flush()
        # The replica fetchers' and the controller's failure paths log at debug (rarely).
        env = dict(os.environ, STROM_LOG=os.environ.get(
            "STROM_LOG", "info,strom::replication=debug,strom::metadata::controller=debug"))
        # Spawned from the main thread only: setpriv's pdeathsig follows the spawning thread.
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.state[i] = "up"

    def kill9(self, i):
        p = self.procs.get(i)
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        self.state[i] = "down"

    def terminate(self, i, timeout):
        """SIGTERM (a controlled shutdown), and the exit waited for: (exit status, seconds
        it took), or (None, timeout) when it did not exit in time (then kill -9)."""
        self.check_exits()
        p = self.procs[i]
        # An exit from now on is the one asked for (check_exits ignores "stopping").
        self.state[i] = "stopping"
        t = time.monotonic()
        os.kill(p.pid, signal.SIGTERM)
        try:
            status = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            status = None
        self.state[i] = "down"
        return status, time.monotonic() - t

    def node_ready(self, i, timeout):
        """Waits until node i sees a quorum leader and itself registered and unfenced;
        False if that takes longer than `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_exits()
            v = self.info(i, timeout_ms=1000)
            if v and v.get("quorum") and v["quorum"]["leader_id"] > 0 and \
                    any(b["node_id"] == i and not b["fenced"] for b in v["brokers"]):
                return True
            time.sleep(0.2)
        return False

    def pause(self, i):
        os.kill(self.procs[i].pid, signal.SIGSTOP)
        self.state[i] = "paused"

    def resume(self, i):
        p = self.procs.get(i)
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
        self.state[i] = "up"

    def check_exits(self):
        """Nodes that exited on their own (not killed, not shut down by the harness):
        recorded (a finding) and started again."""
        for i in self.nodes:
            p = self.procs.get(i)
            if self.state[i] in ("up", "paused") and p is not None and p.poll() is not None:
                self.unexpected_exits.append((i, p.returncode, round(now(), 1)))
                say("FINDING: node %d exited on its own (status %s); log: %s" % (i, p.returncode, self.log_path(i)))
                self.state[i] = "down"
                self.start(i)

    def stop_all(self):
        for i in self.nodes:
            p = self.procs.get(i)
            if p is not None and p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for i in self.nodes:
            p = self.procs.get(i)
            if p is None:
                continue
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            self.state[i] = "down"

    def reachable(self):
        """Nodes that are up and not cut off from anyone (good to ask about the cluster)."""
        cut = {n for pair in self.net.blocked for n in pair}
        ok = [i for i in self.nodes if self.state[i] == "up" and i not in cut]
        return ok or [i for i in self.nodes if self.state[i] == "up"]

    def info(self, i, timeout_ms=2000):
        try:
            r = subprocess.run([self.strom, "cluster", "info", "-o", "json", "-b", self.net.addr(i),
                                "--timeout-ms", str(timeout_ms)],
                               capture_output=True, text=True, timeout=timeout_ms / 1000 * 3 + 5)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def controller(self):
        """The metadata quorum's leader, as a reachable node sees it (None if unknown)."""
        for i in self.reachable():
            v = self.info(i)
            if v and v.get("quorum") and v["quorum"]["leader_id"] > 0:
                return v["quorum"]["leader_id"]
        return None

    def topic_view(self, topic=TOPIC):
        for i in self.reachable():
            try:
                md = metadata(self.net.addr(i))
            except (OSError, struct.error):
                continue
            if topic in md:
                return md[topic]
        return None

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_exits()
            views = [self.info(i) for i in self.nodes]
            if all(v and v.get("quorum") and v["quorum"]["leader_id"] > 0
                   and sorted(b["node_id"] for b in v["brokers"] if not b["fenced"]) == sorted(self.nodes)
                   for v in views):
                return views[0]
            time.sleep(0.3)
        raise HarnessError("the cluster was not ready within %d s" % timeout)

    def settled(self, topics):
        """(True, []) when every node reports every partition of `topics` led, with a full
        ISR, identically, and every broker registered and unfenced; else (False, problems)."""
        views = {}
        problems = []
        for i in self.nodes:
            try:
                views[i] = metadata(self.net.addr(i))
            except (OSError, struct.error) as e:
                problems.append("node %d: Metadata failed: %s" % (i, e))
        shapes = {}
        for i, md in views.items():
            for t in topics:
                if t not in md or not md[t]:
                    problems.append("node %d does not list %s" % (i, t))
                    continue
                for p, (leader, replicas, isr, err) in sorted(md[t].items()):
                    if leader < 0 or isr != replicas:
                        problems.append("node %d: %s-%d leader %d replicas %s isr %s" % (i, t, p, leader, replicas, isr))
            shapes[i] = {t: {p: v[:3] for p, v in md.get(t, {}).items()} for t in topics}
        if len({json.dumps(v, sort_keys=True) for v in shapes.values()}) > 1:
            problems.append("nodes disagree on leaders/ISRs")
        for i in self.nodes:
            v = self.info(i)
            if not v:
                problems.append("node %d: cluster info failed" % i)
                continue
            fenced = [b["node_id"] for b in v["brokers"] if b["fenced"]]
            listed = sorted(b["node_id"] for b in v["brokers"])
            if fenced or listed != sorted(self.nodes):
                problems.append("node %d sees brokers %s, fenced %s" % (i, listed, fenced))
        return not problems, problems

    def offsets_leader(self, partition):
        """The leader of a __consumer_offsets partition, as the node with the newest leader
        epoch for it says (every node that is up is asked, cut off or not: the harness
        reaches them all): (leader, epoch), or None."""
        best = None
        for i in self.nodes:
            if self.state[i] != "up":
                continue
            try:
                v = leaders(self.net.addr(i), "__consumer_offsets").get(partition)
            except (OSError, struct.error):
                continue
            if v and v[0] >= 0 and (best is None or v[1] > best[1]):
                best = v
        return best

    def log_tail(self, i, n=30):
        try:
            with open(self.log_path(i), errors="replace") as f:
                return "".join(collections.deque(f, n))
        except OSError:
            return ""


# --------------------------------------------------------------------------------------
# History: everything the clients saw, with times (seconds since start, monotonic).


class Group:
    """One group as its clients saw it: the records its consumer polled (none for the
    committer's group), the commits the coordinator acknowledged, and the committed
    offsets read back (OffsetFetch)."""

    def __init__(self, name, group):
        self.name, self.group = name, group
        self.reads = []  # (partition, offset, value, t) polled
        self.poll_skips = []  # (partition, from offset, to offset, t)
        self.rewinds = 0
        self.high = {}  # partition -> highest offset polled
        self.errors = collections.Counter()  # the consumer's (or the committer's)
        self.commits = []  # (t acknowledged, partition, offset)
        self.readbacks = []  # (t asked, t answered, partition, offset)
        self.fetch_errors = collections.Counter()  # the watcher's
        self.final = {}  # partition -> committed offset after the run


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}  # value -> (producer, partition, t)
        self.acked = {}  # value -> (partition, offset, t)
        self.failed = {}  # value -> (error, t)
        self.groups = collections.OrderedDict()  # name -> Group: the consumers', the committer's
        self.producer_errors = collections.Counter()
        # Every error a producer was told about: (t, producer, "delivery" | "error" (the
        # error callback) | "produce" (refused at once), error name, value or error text).
        self.producer_events = []
        self.producer_fatal = []  # (producer, error, t)
        self.faults = []  # dicts

    def group(self, name, group):
        with self.lock:
            return self.groups.setdefault(name, Group(name, group))

    def consumers(self):
        return [g for g in self.groups.values() if g.name != "committer"]

    def producer_event(self, producer, what, name, text):
        with self.lock:
            self.producer_events.append((now(), producer, what, name, text))

    def send(self, producer, value, partition):
        with self.lock:
            self.sent[value] = (producer, partition, now())

    def ack(self, value, partition, offset):
        with self.lock:
            self.acked[value] = (partition, offset, now())
            self.failed.pop(value, None)

    def fail(self, value, error):
        with self.lock:
            if value not in self.acked:
                self.failed[value] = (error, now())


# --------------------------------------------------------------------------------------
# Clients.


class Worker(threading.Thread):
    def __init__(self, name):
        super().__init__(name=name, daemon=True)
        self.stop_ev = threading.Event()
        self.errors = []
        self.seq = 0

    def stop(self):
        self.stop_ev.set()

    def run(self):
        # A client that raises something unexpected starts over with a new instance
        # (reported; producers continue their sequence, so values stay unique).
        while True:
            try:
                self.body()
                return
            except Exception as e:  # noqa: BLE001 - reported by the harness
                self.errors.append("%.1fs %r" % (now(), e))
                say("worker %s: %r; starting it again" % (self.name, e))
                if self.stop_ev.wait(1):
                    return


class ConfluentProducer(Worker):
    def __init__(self, pid, bootstrap, history, partitions, rate, max_outstanding):
        super().__init__("producer-%d-confluent" % pid)
        self.pid, self.bootstrap, self.h = pid, bootstrap, history
        self.partitions, self.rate, self.max_outstanding = partitions, rate, max_outstanding
        self.fatal = threading.Event()
        self.instances = 0

    def make(self):
        from confluent_kafka import Producer
        self.instances += 1

        def on_error(err):
            self.h.producer_errors["p%d %s" % (self.pid, err.name())] += 1
            self.h.producer_event("p%d" % self.pid, "error", err.name(), err.str())
            if err.fatal() and not self.fatal.is_set():
                with self.h.lock:
                    self.h.producer_fatal.append(("p%d" % self.pid, "%s: %s" % (err.name(), err.str()), round(now(), 1)))
                self.fatal.set()

        return Producer({
            "bootstrap.servers": self.bootstrap,
            "client.id": "nemesis-p%d" % self.pid,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 120000,
            "request.timeout.ms": 10000,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 1000,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "socket.connection.setup.timeout.ms": 5000,
            "topic.metadata.refresh.interval.ms": 5000,
            "error_cb": on_error,
            "logger": CLIENT_LOG,
        })

    def on_delivery(self, err, msg):
        value = msg.value().decode()
        if err is None:
            self.h.ack(value, msg.partition(), msg.offset())
        else:
            self.h.fail(value, err.name())
            self.h.producer_event("p%d" % self.pid, "delivery", err.name(), value)

    def body(self):
        from confluent_kafka import KafkaException
        p = self.make()
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop_ev.is_set():
            if self.fatal.is_set():
                # A fatal idempotence error (reported): this instance is unusable; what
                # it still holds fails, and a new producer id continues.
                say("producer p%d: fatal error, continuing with a new producer id: %s" %
                    (self.pid, self.h.producer_fatal[-1][1] if self.h.producer_fatal else "?"))
                try:
                    p.purge()
                    p.poll(1)
                except KafkaException:
                    pass
                p = self.make()
                self.fatal.clear()
            if len(p) >= self.max_outstanding:
                p.poll(0.05)
                continue
            value = "p%d-%d" % (self.pid, self.seq)
            part = self.seq % self.partitions
            self.seq += 1
            self.h.send("p%d" % self.pid, value, part)
            try:
                p.produce(TOPIC, value=value.encode(), partition=part, on_delivery=self.on_delivery)
            except (BufferError, KafkaException) as e:
                self.h.fail(value, "produce: %s" % e)
                self.h.producer_event("p%d" % self.pid, "produce", type(e).__name__, str(e))
            next_at += interval
            delay = next_at - time.monotonic()
            try:
                p.poll(max(0.0, delay))
            except KafkaException as e:  # a fatal error surfaces here too
                self.fatal_seen(e)
            if delay < -1:
                next_at = time.monotonic()
        deadline = time.monotonic() + self.drain_seconds
        while len(p) and time.monotonic() < deadline:
            try:
                p.flush(max(0.1, deadline - time.monotonic()))
            except KafkaException as e:
                self.fatal_seen(e)
                p.purge()
                p.poll(1)
        if len(p):
            say("producer p%d: %d values unresolved after %ds (unknown)" % (self.pid, len(p), self.drain_seconds))

    def fatal_seen(self, e):
        err = e.args[0]
        self.h.producer_event("p%d" % self.pid, "error", err.name(), err.str())
        if err.fatal() and not self.fatal.is_set():
            with self.h.lock:
                self.h.producer_fatal.append(("p%d" % self.pid, "%s: %s" % (err.name(), err.str()), round(now(), 1)))
            self.fatal.set()

    drain_seconds = 30


class KafkaPythonProducer(Worker):
    def __init__(self, pid, bootstrap, history, partitions, rate, max_outstanding):
        super().__init__("producer-%d-kafka-python" % pid)
        self.pid, self.bootstrap, self.h = pid, bootstrap, history
        self.partitions, self.rate, self.max_outstanding = partitions, rate, max_outstanding
        self.outstanding = 0
        self.olock = threading.Lock()
        self.instances = 0

    def make(self):
        from kafka import KafkaProducer
        self.instances += 1
        return KafkaProducer(
            bootstrap_servers=self.bootstrap.split(","),
            client_id="nemesis-p%d" % self.pid,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=10000,
            delivery_timeout_ms=120000,
            max_block_ms=5000,
            retry_backoff_ms=100,
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=1000,
            metadata_max_age_ms=5000,
        )

    def body(self):
        from kafka.errors import KafkaTimeoutError
        p = self.make()
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        errors_in_row = 0

        def done(value):
            def ok(md):
                self.h.ack(value, md.partition, md.offset)
                with self.olock:
                    self.outstanding -= 1

            def err(e):
                self.h.fail(value, type(e).__name__)
                self.h.producer_errors["p%d %s" % (self.pid, type(e).__name__)] += 1
                self.h.producer_event("p%d" % self.pid, "delivery", type(e).__name__, value)
                with self.olock:
                    self.outstanding -= 1
            return ok, err

        while not self.stop_ev.is_set():
            if self.outstanding >= self.max_outstanding:
                time.sleep(0.05)
                continue
            value = "p%d-%d" % (self.pid, self.seq)
            part = self.seq % self.partitions
            self.seq += 1
            self.h.send("p%d" % self.pid, value, part)
            try:
                fut = p.send(TOPIC, value=value.encode(), partition=part)
                ok, err = done(value)
                with self.olock:
                    self.outstanding += 1
                fut.add_callback(ok)
                fut.add_errback(err)
                errors_in_row = 0
            except KafkaTimeoutError as e:
                self.h.fail(value, "send: %s" % type(e).__name__)
                self.h.producer_event("p%d" % self.pid, "produce", type(e).__name__, str(e))
            except Exception as e:  # noqa: BLE001 - e.g. a fatal idempotence state
                self.h.fail(value, "send: %s" % type(e).__name__)
                self.h.producer_event("p%d" % self.pid, "produce", type(e).__name__, str(e))
                errors_in_row += 1
                if errors_in_row >= 20:
                    with self.h.lock:
                        self.h.producer_fatal.append(("p%d" % self.pid, "%s: %s" % (type(e).__name__, e), round(now(), 1)))
                    p.close(timeout=5)
                    p = self.make()
                    errors_in_row = 0
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1:
                next_at = time.monotonic()
        try:
            p.flush(timeout=ConfluentProducer.drain_seconds)
        except KafkaTimeoutError:
            say("producer p%d: %d values unresolved after %ds (unknown)" %
                (self.pid, self.outstanding, ConfluentProducer.drain_seconds))
        p.close(timeout=5)


class GroupConsumer(Worker):
    """A consumer in a group of its own, subscribed to the topic: what it polls and the
    commits acknowledged to it go to its Group in the history."""

    def __init__(self, name, bootstrap, history, group):
        super().__init__("consumer-" + name)
        self.bootstrap, self.h = bootstrap, history
        self.g = history.group(name, group)
        self.last = {}  # partition -> offset polled last since the partition was assigned

    def polled(self, p, o, v, t):
        g = self.g
        last = self.last.get(p)
        with self.h.lock:
            g.reads.append((p, o, v, t))
            if last is not None and o > last + 1:
                g.poll_skips.append((p, last, o, round(t, 1)))
            elif last is not None and o <= last:
                g.rewinds += 1
            g.high[p] = max(g.high.get(p, -1), o)
        self.last[p] = o

    def committed(self, t, offsets):
        """offsets: [(partition, offset)] the coordinator acknowledged at t."""
        with self.h.lock:
            self.g.commits.extend((t, p, o) for p, o in offsets)


class ConfluentGroupConsumer(GroupConsumer):
    """confluent-kafka, auto-commit every second."""

    def __init__(self, bootstrap, history, group):
        super().__init__("confluent", bootstrap, history, group)

    def body(self):
        from confluent_kafka import Consumer
        g = self.g

        def on_assign(c, parts):
            for tp in parts:
                self.last[tp.partition] = None

        def on_commit(err, parts):
            if err is not None:
                if err.name() != "_NO_OFFSET":  # nothing new to commit
                    g.errors["commit %s" % err.name()] += 1
                return
            self.committed(now(), [(tp.partition, tp.offset) for tp in parts if tp.error is None and tp.offset >= 0])
            for tp in parts:
                if tp.error is not None:
                    g.errors["commit %s" % tp.error.name()] += 1

        c = Consumer({
            "bootstrap.servers": self.bootstrap,
            "client.id": "nemesis-consumer",
            "group.id": g.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 1000,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "fetch.wait.max.ms": 200,
            "topic.metadata.refresh.interval.ms": 5000,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "socket.connection.setup.timeout.ms": 5000,
            "error_cb": lambda err: g.errors.update([err.name()]),
            "on_commit": on_commit,
            "logger": CLIENT_LOG,
        })
        c.subscribe([TOPIC], on_assign=on_assign)
        try:
            while not self.stop_ev.is_set():
                msgs = c.consume(500, 0.2)
                t = now()
                for m in msgs:
                    if m.error():
                        g.errors[m.error().name()] += 1
                        continue
                    self.polled(m.partition(), m.offset(), m.value().decode(), t)
        finally:
            c.close()  # commits what was polled


class KafkaPythonGroupConsumer(GroupConsumer):
    """kafka-python, committing what it polled once a second (and when it stops) with a
    synchronous commit of explicit offsets, never below one it committed before."""

    def __init__(self, bootstrap, history, group):
        super().__init__("kafka-python", bootstrap, history, group)
        self.done = {}  # partition -> offset committed (acknowledged) last

    def body(self):
        from kafka import ConsumerRebalanceListener, KafkaConsumer
        g = self.g
        me = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                pass

            def on_partitions_assigned(self, assigned):
                for tp in assigned:
                    me.last[tp.partition] = None

        c = KafkaConsumer(
            bootstrap_servers=self.bootstrap.split(","),
            client_id="nemesis-consumer-kp",
            group_id=g.group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            request_timeout_ms=15000,
            fetch_max_wait_ms=200,
            metadata_max_age_ms=5000,
            retry_backoff_ms=100,
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=1000,
        )
        c.subscribe([TOPIC], listener=Listener())
        next_commit = time.monotonic() + 1
        try:
            while not self.stop_ev.is_set():
                for tp, recs in c.poll(timeout_ms=200, max_records=500).items():
                    t = now()
                    for m in recs:
                        self.polled(tp.partition, m.offset, m.value.decode(), t)
                if time.monotonic() >= next_commit:
                    self.commit(c)
                    next_commit = time.monotonic() + 1
            self.commit(c)
        finally:
            c.close(autocommit=False)

    def commit(self, c):
        from kafka import TopicPartition
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata
        assigned = {tp.partition for tp in c.assignment()}
        offsets = {p: o + 1 for p, o in self.last.items()
                   if o is not None and p in assigned and o + 1 > self.done.get(p, 0)}
        if not offsets:
            return
        try:
            c.commit({TopicPartition(TOPIC, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()},
                     timeout_ms=5000)
        except KafkaError as e:
            self.g.errors["commit %s" % type(e).__name__] += 1
            return
        self.committed(now(), sorted(offsets.items()))
        self.done.update(offsets)


class OffsetWatcher(Worker):
    """Reads a group's committed offsets twice a second (fetch_committed)."""

    def __init__(self, cluster, history, group, partitions):
        super().__init__("watcher-" + group.name)
        self.c, self.h, self.g, self.partitions = cluster, history, group, partitions

    def body(self):
        while not self.stop_ev.wait(0.5):
            fetch_committed(self.c, self.h, self.g, self.partitions)


def fetch_committed(cluster, h, g, partitions):
    """The group's committed offsets (OffsetFetch) from the leader of its __consumer_offsets
    partition, kept (as read back) only if that node had the newest leader epoch any node
    reports both before and after the read: a coordinator deposed without knowing it yet
    (paused, cut off) answers from what it held, which is stale, not a regression. Returns
    {partition: offset} of those that have one, or None (counted in g.fetch_errors)."""
    where = offsets_partition(g.group, cluster.args.offsets_partitions)
    before = cluster.offsets_leader(where)
    if before is None:
        g.fetch_errors["no leader"] += 1
        return None
    asked = now()
    try:
        out, err = offset_fetch(cluster.net.addr(before[0]), g.group, TOPIC, list(range(partitions)))
    except (OSError, struct.error) as e:
        g.fetch_errors[type(e).__name__] += 1
        return None
    answered = now()
    if err:
        g.fetch_errors["error %d" % err] += 1
        return None
    if cluster.offsets_leader(where) != before:
        g.fetch_errors["leader changed during the read"] += 1
        return None
    out = {p: o for p, o in out.items() if o >= 0}
    with h.lock:
        g.readbacks.extend((asked, answered, p, o) for p, o in sorted(out.items()))
    return out


class Committer(Worker):
    """Commits an increasing counter for every partition (a group of its own, no members)
    and reads the commits back: an acknowledged commit must never be followed by a lower
    read-back."""

    def __init__(self, bootstrap, history, group, partitions):
        super().__init__("committer")
        self.bootstrap, self.h, self.partitions = bootstrap, history, partitions
        self.g = history.group("committer", group)

    def body(self):
        from confluent_kafka import Consumer, KafkaException, TopicPartition
        g = self.g
        c = Consumer({
            "bootstrap.servers": self.bootstrap,
            "client.id": "nemesis-committer",
            "group.id": g.group,
            "enable.auto.commit": False,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "socket.connection.setup.timeout.ms": 5000,
            "error_cb": lambda err: g.errors.update([err.name()]),
            "logger": CLIENT_LOG,
        })
        k = 0
        try:
            while not self.stop_ev.wait(0.5):
                k += 1
                try:
                    res = c.commit(offsets=[TopicPartition(TOPIC, p, k) for p in range(self.partitions)],
                                   asynchronous=False)
                    if all(tp.error is None for tp in res):
                        t = now()
                        with self.h.lock:
                            g.commits.extend((t, p, k) for p in range(self.partitions))
                    else:
                        g.errors["commit partition error"] += 1
                except KafkaException as e:
                    g.errors["commit %s" % e.args[0].name()] += 1
                asked = now()
                try:
                    got = c.committed([TopicPartition(TOPIC, p) for p in range(self.partitions)], timeout=3)
                    answered = now()
                    with self.h.lock:
                        g.readbacks.extend((asked, answered, tp.partition, tp.offset) for tp in got
                                           if tp.error is None and tp.offset >= 0)
                except KafkaException as e:
                    g.errors["committed %s" % e.args[0].name()] += 1
        finally:
            c.close()


def final_committed(cluster, h, g, partitions, timeout):
    """The group's committed offsets after the run (fetch_committed; also the group's final
    offsets), asked until every partition has one or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while True:
        g.final = fetch_committed(cluster, h, g, partitions) or g.final
        if len(g.final) == partitions or time.monotonic() > deadline:
            return g.final
        time.sleep(0.5)


# --------------------------------------------------------------------------------------
# Final reads.


def final_read_confluent(bootstrap, partitions, timeout):
    """Every record of every partition, from the start to the high watermark."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "nemesis-final-%d" % os.getpid(),
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest", "logger": CLIENT_LOG})
    try:
        ends = {}
        for p in range(partitions):
            lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
            ends[p] = (lo, hi)
        c.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(partitions)])
        out = {p: [] for p in range(partitions)}
        pending = {p for p in range(partitions) if ends[p][1] > 0}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error():
                    continue
                p = m.partition()
                if m.offset() < ends[p][1]:
                    out[p].append((m.offset(), m.value().decode()))
                if m.offset() >= ends[p][1] - 1:
                    pending.discard(p)
        if pending:
            raise HarnessError("final read (confluent-kafka) incomplete after %ds: partitions %s" % (timeout, sorted(pending)))
        return ends, out
    finally:
        c.close()


def final_read_kafka_python(bootstrap, partitions, ends, timeout):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", request_timeout_ms=10000)
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = {p: [] for p in range(partitions)}
        pending = {p for p in range(partitions) if ends[p][1] > 0}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for tp, recs in c.poll(timeout_ms=500, max_records=5000).items():
                for m in recs:
                    if m.offset < ends[tp.partition][1]:
                        out[tp.partition].append((m.offset, m.value.decode()))
                    if m.offset >= ends[tp.partition][1] - 1:
                        pending.discard(tp.partition)
        if pending:
            raise HarnessError("final read (kafka-python) incomplete after %ds: partitions %s" % (timeout, sorted(pending)))
        return out
    finally:
        c.close()


# --------------------------------------------------------------------------------------
# Replicas: the segment files of each partition, concatenated, byte for byte.


def replica_log(data_dir, topic, p):
    """A replica's log: the record batches of its segment files, in order (segments are
    preallocated: a segment's batches end where a zero length or the file's end is), as
    (bytes, [(base offset, last offset, start byte, end byte)]); None without a directory."""
    d = os.path.join(data_dir, "%s-%d" % (topic, p))
    try:
        segs = sorted(f for f in os.listdir(d) if f.endswith(".log"))
    except OSError:
        return None
    out = bytearray()
    batches = []
    for f in segs:
        with open(os.path.join(d, f), "rb") as fh:
            while True:
                head = fh.read(12)
                if len(head) < 12:
                    break
                base, length = struct.unpack(">qi", head)
                if length < 15:
                    break
                body = fh.read(length)
                if len(body) < length:
                    break
                last = base + struct.unpack_from(">i", body, 11)[0]
                batches.append((base, last, len(out), len(out) + 12 + length))
                out += head + body
    return bytes(out), batches


def below(log, hw):
    """The bytes of a replica log's batches that lie wholly below offset `hw`."""
    data, batches = log
    n = 0
    for base, last, _start, end in batches:
        if last >= hw:
            break
        n = end
    return data[:n]


def _varint(b, i):
    n = shift = 0
    while True:
        x = b[i]
        i += 1
        n |= (x & 0x7F) << shift
        if not x & 0x80:
            return (n >> 1) ^ -(n & 1), i
        shift += 7


def records_below(log, bound):
    """The records of a replica log below offset `bound`: {offset: (key, value)}; None when
    a batch is compressed (not decoded here)."""
    data, batches = log
    out = {}
    for base, _last, start, end in batches:
        if base >= bound:
            break
        attributes, count = struct.unpack_from(">h", data, start + 21)[0], struct.unpack_from(">i", data, start + 57)[0]
        if attributes & 0x7:
            return None
        i = start + 61
        for _ in range(count):
            length, i = _varint(data, i)
            nxt = i + length
            i += 1  # attributes
            _ts, i = _varint(data, i)
            delta, i = _varint(data, i)
            n, i = _varint(data, i)
            key = None if n < 0 else bytes(data[i:i + n])
            i += max(n, 0)
            n, i = _varint(data, i)
            value = None if n < 0 else bytes(data[i:i + n])
            if base + delta < bound:
                out[base + delta] = (key, value)
            i = nxt
        if i != end:
            raise ValueError("record batch at offset %d: records end at byte %d of %d" % (base, i - start, end - start))
    return out


def compacted_differ(a, b, bound):
    """Two replicas of a compacted partition, each cleaned on its own (so not byte-identical
    once either compacted): a problem when, below `bound`, they hold different records at an
    offset both have, or a different latest record (a tombstone being none) for a key; None
    when they agree; False when they cannot be compared so (compressed batches)."""
    try:
        ra, rb = records_below(a, bound), records_below(b, bound)
    except (ValueError, IndexError, struct.error) as e:
        return "a record batch that does not decode: %s" % e
    if ra is None or rb is None:
        return False
    both = sorted(set(ra) & set(rb))
    diff = [o for o in both if ra[o] != rb[o]]
    if diff:
        return "different records at %d offsets both hold, first %d: %r vs %r" % (
            len(diff), diff[0], ra[diff[0]], rb[diff[0]])

    def latest(recs):
        state = {}
        for o in sorted(recs):
            key, value = recs[o]
            state[key] = (o, value)
        return {k: v for k, v in state.items() if v[1] is not None}
    la, lb = latest(ra), latest(rb)
    keys = sorted((k for k in set(la) | set(lb) if la.get(k) != lb.get(k)), key=repr)
    if keys:
        return "different latest records for %d keys, first %r: %r vs %r" % (
            len(keys), keys[0], la.get(keys[0]), lb.get(keys[0]))
    return None


def compare_replicas(cluster, parts, wait_seconds):
    """parts: [(topic, partition, replicas, high watermark or None)]. The replicas' logs
    must be byte-identical below the high watermark (for None: below the smallest log end
    among them; for a compacted topic, which each replica cleans on its own: the same
    records at the offsets both hold and the same latest record per key), and end at the
    same offset once the cluster settled (waited for, up to wait_seconds in all). Returns
    (partitions compared, [(topic, partition, problem)])."""
    deadline = time.monotonic() + wait_seconds
    problems = []
    checked = 0
    for topic, p, replicas, hw in parts:
        if len(replicas) < 2:
            continue
        while True:
            logs = {i: replica_log(cluster.data_dir(i), topic, p) for i in replicas}
            ends = {i: (v[1][-1][1] + 1 if v and v[1] else 0) for i, v in logs.items()}
            if len(set(ends.values())) == 1 or time.monotonic() > deadline:
                break
            if os.environ.get("NEMESIS_DEBUG"):
                say("waiting for %s-%d: log ends %s" % (topic, p, ends))
            time.sleep(0.5)
        checked += 1
        if any(v is None for v in logs.values()):
            problems.append((topic, p, "a replica has no log directory: %s" %
                             [i for i, v in logs.items() if v is None]))
            continue
        bound = hw if hw is not None else min(ends.values())
        ids = sorted(logs)
        ref = below(logs[ids[0]], bound)
        for i in ids[1:]:
            other = below(logs[i], bound)
            if ref != other and topic in COMPACTED:
                problem = compacted_differ(logs[ids[0]], logs[i], bound)
                if problem is None:
                    continue
                if problem:
                    problems.append((topic, p, "below offset %d nodes %d and %d: %s" % (bound, ids[0], i, problem)))
                    continue
            if ref != other:
                n = min(len(ref), len(other))
                pos = next((k for k in range(n) if ref[k] != other[k]), n)
                at = lambda log: next(((b, l) for b, l, s, e in log[1] if s <= pos < e), None)  # noqa: E731
                problems.append((topic, p, "below offset %d node %d (%d bytes) and node %d (%d bytes) differ "
                                 "from byte %d: batch (base, last) %s vs %s" %
                                 (bound, ids[0], len(ref), i, len(other), pos, at(logs[ids[0]]), at(logs[i]))))
        if len(set(ends.values())) != 1:
            problems.append((topic, p, "log end offsets differ after settling: %s" % ends))
        if hw is not None and any(e < hw for e in ends.values()):
            problems.append((topic, p, "a replica ends below the high watermark %d: %s" % (hw, ends)))
    return checked, problems


# --------------------------------------------------------------------------------------
# The nemesis.

KINDS = ["kill-leader", "pause-leader", "isolate-leader", "kill-controller", "pause-follower",
         "isolate-controller", "cut-leader", "kill-follower", "pause-controller", "isolate-follower",
         "shutdown-leader"]
# (cut-follower, cut-controller, shutdown-follower and shutdown-controller are accepted by
# --kinds too.)
ACTIONS = ("kill", "shutdown", "pause", "isolate", "cut")
SHUTDOWN_WAIT = 30  # seconds a SIGTERM'd node gets to exit
READY_WAIT = 60  # seconds a restarted node gets to be registered and unfenced again


def offsets_partition(group, partitions):
    """The __consumer_offsets partition of a group (Kafka's: abs(String.hashCode) % n)."""
    h = 0
    for ch in group:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return 0 if h == -(1 << 31) else abs(h) % partitions


class Nemesis:
    def __init__(self, cluster, history, rng, partitions, netns, kinds):
        self.c, self.h, self.rng, self.partitions = cluster, history, rng, partitions
        self.kinds = [k for k in kinds if netns or not (k.startswith("isolate") or k.startswith("cut"))]
        if not self.kinds:
            raise HarnessError("no fault kind left to inject (network faults need the namespaces)")
        self.queue = []
        self.rounds = 0

    def next_kind(self):
        if not self.queue:
            order = list(self.kinds)
            self.rng.shuffle(order)
            if self.rounds == 0:
                # The first round's controlled shutdowns come among its first four faults:
                # every run of four faults or more has one, whatever the seed.
                shutdowns = [k for k in order if k.startswith("shutdown")]
                order = [k for k in order if not k.startswith("shutdown")]
                for k in shutdowns:
                    order.insert(self.rng.randrange(min(4, len(order) + 1)), k)
            self.rounds += 1
            self.queue = order[::-1]
        return self.queue.pop()

    def roles(self, view, ctrl):
        led = collections.defaultdict(list)
        for p, (leader, *_rest) in sorted((view or {}).items()):
            if leader >= 0:
                led[leader].append(p)
        return led, ctrl

    def describe(self, node, led, ctrl):
        r = []
        if led.get(node):
            r.append("leader of %s" % ",".join("%s-%d" % (TOPIC, p) for p in led[node]))
        else:
            r.append("follower only")
        if node == ctrl:
            r.append("controller")
        return "; ".join(r)

    def target(self, role, led, ctrl):
        nodes = self.c.nodes
        if role == "leader":
            leaders = sorted(led)
            return self.rng.choice(leaders) if leaders else self.rng.choice(nodes)
        if role == "controller":
            return ctrl if ctrl in nodes else self.rng.choice(nodes)
        # follower: a node that leads no partition of the topic if there is one, else one
        # that is not the leader of a randomly chosen partition
        free = [n for n in nodes if not led.get(n)]
        if free:
            return self.rng.choice(free)
        p = self.rng.randrange(self.partitions)
        leader = next((n for n, ps in led.items() if p in ps), None)
        return self.rng.choice([n for n in nodes if n != leader])

    def inject(self, kind):
        action, role = kind.split("-")
        view = self.c.topic_view()
        ctrl = self.c.controller()
        led, ctrl = self.roles(view, ctrl)
        node = self.target(role, led, ctrl)
        fault = {"kind": kind, "node": node, "roles": self.describe(node, led, ctrl),
                 "led": sorted(led.get(node, [])), "controller": node == ctrl,
                 "addr": self.c.net.addr(node), "coordinator_of": self.coordinated(node)}
        if fault["coordinator_of"]:
            fault["roles"] += "; coordinator of %s" % ",".join(fault["coordinator_of"])
        rng = self.rng
        if action == "shutdown":
            down = rng.uniform(1, 3)
            fault["t"] = now()
            say("SIGTERM node %d (%s): controlled shutdown" % (node, fault["roles"]))
            status, took = self.c.terminate(node, SHUTDOWN_WAIT)
            fault["exited"], fault["status"] = now(), status
            if status is None:
                say("FINDING: node %d did not exit within %d s of its SIGTERM (killed); log: %s" %
                    (node, SHUTDOWN_WAIT, self.c.log_path(node)))
            else:
                say("  node %d exited %.1fs after its SIGTERM (status %d); restart in %.1fs" % (node, took, status, down))
            self.sleep(down)
            self.c.start(node)
            fault["healed"] = now()
            ready = self.c.node_ready(node, READY_WAIT)
            fault["ready"] = now() if ready else None
            if ready:
                say("  node %d registered and unfenced again %.1fs after its restart" % (node, now() - fault["healed"]))
            else:
                say("FINDING: node %d not registered and unfenced within %d s of its restart" % (node, READY_WAIT))
            fault["window_end"] = now()
        elif action == "kill":
            down = rng.uniform(1, 5)
            fault["t"] = now()
            self.c.kill9(node)
            say("kill -9 node %d (%s); restart in %.1fs" % (node, fault["roles"], down))
            self.sleep(down)
            self.c.start(node)
            fault["healed"] = now()
        elif action == "pause":
            dur = rng.uniform(1, 6)
            fault["t"] = now()
            self.c.pause(node)
            say("SIGSTOP node %d (%s) for %.1fs" % (node, fault["roles"], dur))
            self.sleep(dur)
            self.c.resume(node)
            fault["healed"] = now()
        elif action == "isolate":
            dur = rng.uniform(2, 8)
            others = [n for n in self.c.nodes if n != node]
            fault["t"] = now()
            for o in others:
                self.c.net.block(node, o)
            say("partition: node %d (%s) | nodes %s, for %.1fs" % (node, fault["roles"], others, dur))
            self.sleep(dur)
            self.c.net.heal()
            fault["healed"] = now()
        elif action == "cut":
            dur = rng.uniform(2, 6)
            other = rng.choice([n for n in self.c.nodes if n != node])
            fault["t"] = now()
            fault["other"] = other
            self.c.net.block(node, other)
            say("partition between node %d (%s) and node %d only, for %.1fs" % (node, fault["roles"], other, dur))
            self.sleep(dur)
            self.c.net.heal()
            fault["healed"] = now()
        self.h.faults.append(fault)
        return fault

    def coordinated(self, node):
        """The consumer groups whose __consumer_offsets partition `node` leads."""
        view = self.c.topic_view("__consumer_offsets") or {}
        n = len(view)
        return [g.name for g in self.h.consumers()
                if n and view.get(offsets_partition(g.group, n), (-1,))[0] == node]

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.25))
            self.c.check_exits()

    def heal_all(self):
        self.c.net.heal()
        for i in self.c.nodes:
            if self.c.state[i] == "paused":
                self.c.resume(i)
            elif self.c.state[i] == "down":
                self.c.start(i)


# --------------------------------------------------------------------------------------
# The checker.


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def failover_times(h, kinds):
    """Per fault of `kinds` that hit a leader: seconds from the fault until, for every
    partition it led and every producer, a record sent after the fault was acknowledged;
    and how many such faults saw no such acknowledgement before the end of the run."""
    import bisect
    sends = collections.defaultdict(list)  # (producer, partition) -> [(t sent, value)]
    for v, (prod, part, t) in h.sent.items():
        sends[(prod, part)].append((t, v))
    for lst in sends.values():
        lst.sort()
    producers = sorted({k[0] for k in sends})
    out = []
    unrecovered = 0
    for f in h.faults:
        if f["kind"].split("-")[0] not in kinds or not f["led"]:
            continue
        t0 = f["t"]
        worst = 0.0
        for part, prod in [(pa, pr) for pa in f["led"] for pr in producers]:
            lst = sends[(prod, part)]
            first = next((h.acked[v][2] for _t, v in lst[bisect.bisect_left(lst, (t0, "")):] if v in h.acked), None)
            if first is None:
                worst = None
                break
            worst = max(worst, first - t0)
        if worst is not None:
            out.append(worst)
        else:
            unrecovered += 1
    return out, unrecovered


def check(h, ends, final, final_kp, partitions):
    res = collections.OrderedDict()
    details = {}
    at = {}  # (p, o) -> value in the final read
    where = collections.defaultdict(list)
    for p, recs in final.items():
        for o, v in recs:
            at[(p, o)] = v
            where[v].append((p, o))
    # contiguity: offsets 0 .. high watermark - 1, each once
    gaps = []
    for p in range(partitions):
        lo, hi = ends[p]
        offs = [o for o, _ in final[p]]
        if lo != 0 or offs != list(range(lo, hi)):
            missing = sorted(set(range(0, hi)) - set(offs))
            gaps.append((p, lo, hi, len(offs), missing[:10]))
    res["gaps"] = len(gaps)
    details["gaps"] = gaps
    lost = [v for v in h.acked if v not in where]
    res["lost"] = len(lost)
    details["lost"] = [(v, "acknowledged at partition %d offset %d at %.2fs" % h.acked[v]) for v in
                       sorted(lost, key=lambda v: h.acked[v][2])][:50]
    dup = {v: l for v, l in where.items() if len(l) > 1}
    res["duplicated"] = len(dup)
    details["duplicated"] = dict(list(dup.items())[:50])
    inconsistent = []
    for v, (p, o, _t) in h.acked.items():
        if v in where and (p, o) not in where[v]:
            inconsistent.append(("acked at %d/%d, read at %s" % (p, o, where[v]), v))
        elif at.get((p, o), v) != v:
            inconsistent.append(("acked at %d/%d, where the final read has %r" % (p, o, at[(p, o)]), v))
    for v in where:
        if v not in h.sent:
            inconsistent.append(("never sent", v))
    consumer_lost = []
    for g in h.consumers():
        seen = {}
        gone = set()
        for p, o, v, _t in g.reads:
            prev = seen.setdefault((p, o), v)
            if prev != v:
                inconsistent.append(("%s consumer read %r and %r at %d/%d" % (g.name, prev, v, p, o), v))
            if v not in where:
                gone.add(v)
            elif at.get((p, o)) != v:
                inconsistent.append(("%s consumer read it at %d/%d, final read there %r" %
                                     (g.name, p, o, at.get((p, o))), v))
        consumer_lost += [(g.name, v) for v in sorted(gone)]
    for p, recs in final_kp.items():
        if recs != final[p]:
            a = dict(final[p])
            b = dict(recs)
            diff = [o for o in sorted(set(a) | set(b)) if a.get(o) != b.get(o)]
            inconsistent.append(("final readers disagree on partition %d at %d offsets, first %s: %r vs %r" %
                                 (p, len(diff), diff[0], a.get(diff[0]), b.get(diff[0])), None))
    res["inconsistent"] = len(inconsistent)
    details["inconsistent"] = inconsistent[:50]
    res["consumer-lost"] = len(consumer_lost)
    details["consumer-lost"] = consumer_lost[:50]
    skips = [(g.name,) + x for g in h.consumers() for x in g.poll_skips]
    res["poll-skips"] = len(skips)
    details["poll-skips"] = skips[:50]
    back, reads_back = [], []
    for g in h.groups.values():
        b, r = commits_back(g)
        back += b
        reads_back += r
    res["commits-back"] = len(back)
    details["commits-back"] = back[:50]
    res["offsets-back"] = len(reads_back)
    details["offsets-back"] = reads_back[:50]
    # every consumer group committed past 0 on every partition that has data
    missing = [(g.name, p, g.final.get(p), ends[p][1]) for g in h.consumers()
               for p in range(partitions) if ends[p][1] > 0 and g.final.get(p, -1) <= 0]
    res["commits-missing"] = len(missing)
    details["commits-missing"] = missing
    errors, _others = shutdown_errors(h, "p0")
    res["shutdown-errors"] = len(errors)
    details["shutdown-errors"] = errors[:50]
    failed = []
    for f in h.faults:
        if f["kind"].startswith("shutdown"):
            if f["status"] is None:
                failed.append((f["node"], round(f["t"], 1), "did not exit within %d s of its SIGTERM" % SHUTDOWN_WAIT))
            elif f["status"] != 0:
                failed.append((f["node"], round(f["t"], 1), "exited with status %d" % f["status"]))
            if f["ready"] is None:
                failed.append((f["node"], round(f["t"], 1), "not registered and unfenced within %d s of its restart" %
                               READY_WAIT))
    res["shutdown-failed"] = len(failed)
    details["shutdown-failed"] = failed
    return res, details


def commits_back(g):
    """A group's committed offsets going back, as read back: ([read-backs lower than an
    offset acknowledged to a commit before the read-back was asked], [the consumer groups'
    read-backs, from the leader with the newest epoch, lower than one read back before]),
    each as (group, t asked, partition, offset read, offset known before, when). A commit
    acknowledged after a higher one (a client's retry of an older commit) moves what is
    expected back to it."""
    events = [(t, p, o, "acknowledged") for t, p, o in g.commits]
    if g.name != "committer":
        events += [(answered, p, o, "read back") for _t, answered, p, o in g.readbacks]
    events.sort()
    acked, read = {}, {}  # partition -> (offset, "how at t")
    back, reads_back = [], []
    j = 0
    for asked, _answered, p, o in sorted(g.readbacks):
        while j < len(events) and events[j][0] < asked:
            t, ep, eo, how = events[j]
            j += 1
            if how == "acknowledged":
                acked[ep] = (eo, "acknowledged at %.2fs" % t)
                if eo < read.get(ep, (-1,))[0]:
                    read[ep] = acked[ep]
            elif eo > read.get(ep, (-1,))[0]:
                read[ep] = (eo, "read back at %.2fs" % t)
        if o < acked.get(p, (-1,))[0]:
            back.append((g.name, round(asked, 2), p, o) + acked[p])
        elif o < read.get(p, (-1,))[0]:
            reads_back.append((g.name, round(asked, 2), p, o) + read[p])
    return back, reads_back


def shutdown_windows(h):
    """(fault, start, end) of every controlled shutdown: from the SIGTERM until the restarted
    node was registered and unfenced (or the wait for it ended)."""
    return [(f, f["t"], f["window_end"]) for f in h.faults if f["kind"].startswith("shutdown")]


def shutdown_errors(h, producer):
    """The errors `producer` was told about within controlled shutdown windows: (errors,
    notices), the notices being its failed attempts to connect to the stopped node while it
    was down (connection refused), which a node that is away causes whatever it did before
    it left. Each as (node, t, what, error name, value or text)."""
    errors, notices = [], []
    windows = shutdown_windows(h)
    for t, prod, what, name, text in h.producer_events:
        if prod != producer:
            continue
        for f, start, end in windows:
            if start <= t <= end:
                e = (f["node"], round(t, 2), what, name, text)
                if what == "error" and name == "_TRANSPORT" and text.startswith(f["addr"] + "/") and \
                        "Connect to " in text:
                    notices.append(e)
                else:
                    errors.append(e)
                break
    return errors, notices


# --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--strom-bin", default=os.path.join(ROOT, "target", "debug", "strom"))
    ap.add_argument("--faults", type=int, default=14, help="faults to inject (default 14)")
    ap.add_argument("--duration", type=float, default=120,
                    help="at most this many seconds of faults (default 120); the run ends at whichever comes first")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--rate", type=float, default=100, help="values per second per producer (default 100)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--kinds", default=",".join(KINDS),
                    help="fault kinds, comma-separated, each <kill|shutdown|pause|isolate|cut>-"
                         "<leader|follower|controller> (default: all eleven below, in shuffled rounds): %(default)s")
    ap.add_argument("--session-ms", type=int, default=3000, help="broker.session.timeout.ms")
    ap.add_argument("--heartbeat-ms", type=int, default=300, help="broker.heartbeat.interval.ms")
    ap.add_argument("--replica-lag-ms", type=int, default=3000, help="replica.lag.time.max.ms")
    ap.add_argument("--offsets-partitions", type=int, default=6, help="offsets.topic.num.partitions")
    ap.add_argument("--settle-timeout", type=float, default=45,
                    help="seconds the cluster gets, after the faults, to lead every partition with a full ISR")
    ap.add_argument("--no-netns", action="store_true", help="run on 127.0.0.1 without network partitions")
    ap.add_argument("--keep", action="store_true", help="keep the data directories even when the run passes")
    args = ap.parse_args()
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in args.kinds:
        a, _, r = k.partition("-")
        if a not in ACTIONS or r not in ("leader", "follower", "controller"):
            ap.error("unknown fault kind %r" % k)
    if args.nodes < 3:
        ap.error("--nodes must be at least 3 (replication factor 3)")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    args.seed = seed
    rng = random.Random(seed)
    strom = os.path.abspath(args.strom_bin)
    if not os.access(strom, os.X_OK):
        print("no strom binary at %s (cargo build --bin strom)" % strom, file=sys.stderr)
        return 2
    nodes = list(range(1, args.nodes + 1))
    # Bound on everything (holders of the namespaces die then at the latest).
    max_seconds = args.duration + args.settle_timeout + 900
    # Before any thread: the namespace switch is per thread.
    net = Net(nodes, not args.no_netns, max_seconds)
    workdir = tempfile.mkdtemp(prefix="strom-nemesis-")
    logging.basicConfig(filename=os.path.join(workdir, "clients.log"), level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    say("seed %d (--seed replays the fault schedule, not the timing); %d nodes; data and logs in %s" %
        (seed, len(nodes), workdir))
    if net.netns:
        say("network: a namespace per node on a bridge (%s.1-%d); partitions by blackhole routes" % (SUBNET, len(nodes)))
    else:
        say("network: 127.0.0.1 only; NETWORK PARTITIONS SKIPPED (%s)" % net.reason)
    cluster = Cluster(strom, net, nodes, workdir, args)
    h = History()
    workers = []
    status = 2
    try:
        status = campaign(args, rng, net, cluster, h, workers, workdir)
    except HarnessError as e:
        say("HARNESS ERROR: %s" % e)
        for i in nodes:
            say("--- node %d log (tail) ---\n%s" % (i, cluster.log_tail(i)))
        status = 2
    finally:
        for w in workers:
            w.stop()
        net.heal() if net.netns else None
        cluster.stop_all()
        net.close()
        if status != 0 or args.keep:
            dump_history(h, os.path.join(workdir, "history.json"))
            say("kept %s (node logs node<i>.log, data node<i>/, clients.log, history.json)" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


def dump_history(h, path):
    try:
        with h.lock, open(path, "w") as f:
            groups = {g.name: {"group": g.group, "reads": g.reads, "poll_skips": g.poll_skips, "commits": g.commits,
                               "readbacks": g.readbacks, "final": g.final} for g in h.groups.values()}
            json.dump({"sent": h.sent, "acked": h.acked, "failed": h.failed, "groups": groups, "faults": h.faults,
                       "producer_events": h.producer_events, "producer_fatal": h.producer_fatal}, f)
    except (OSError, TypeError) as e:
        say("could not write %s: %s" % (path, e))


def polled(h):
    """What the group consumers polled so far: "<n> (confluent), <n> (kafka-python)"."""
    return ", ".join("%d (%s)" % (len(g.reads), g.name) for g in h.consumers())


def watermarks(bootstrap, partitions, timeout):
    """{partition: (low, high watermark)} of the topic."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "nemesis-watermarks-%d" % os.getpid(),
                  "enable.auto.commit": False, "logger": CLIENT_LOG})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=timeout) for p in range(partitions)}
    except KafkaException as e:
        raise HarnessError("high watermarks not known within %ds: %s" % (timeout, e))
    finally:
        c.close()


def campaign(args, rng, net, cluster, h, workers, workdir):
    from confluent_kafka.admin import AdminClient, NewTopic
    started = now()
    for i in cluster.nodes:
        cluster.start(i)
    cluster.wait_ready(90)
    say("cluster of %d ready in %.1fs (quorum leader %s)" % (len(cluster.nodes), now() - started, cluster.controller()))
    bootstrap = ",".join(net.addr(i) for i in cluster.nodes)
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": CLIENT_LOG})
    fut = admin.create_topics([NewTopic(TOPIC, args.partitions, 3, config={"min.insync.replicas": "2"})],
                              operation_timeout=30, request_timeout=30)
    fut[TOPIC].result()
    deadline = time.monotonic() + 30
    while True:
        view = cluster.topic_view()
        if view and len(view) == args.partitions and all(v[0] >= 0 and len(v[2]) == 3 for v in view.values()):
            break
        if time.monotonic() > deadline:
            raise HarnessError("topic %s not fully replicated within 30 s: %s" % (TOPIC, view))
        time.sleep(0.2)
    say("topic %s: %d partitions, RF 3, min.insync.replicas=2; leaders %s" %
        (TOPIC, args.partitions, {p: v[0] for p, v in sorted(view.items())}))

    stamp = "%d-%d" % (os.getpid(), int(time.time()))
    max_out = max(50, int(args.rate * 20))
    workers.extend([
        ConfluentProducer(0, bootstrap, h, args.partitions, args.rate, max_out),
        KafkaPythonProducer(1, bootstrap, h, args.partitions, args.rate, max_out),
        ConfluentGroupConsumer(bootstrap, h, "nemesis-group-" + stamp),
        KafkaPythonGroupConsumer(bootstrap, h, "nemesis-group-kp-" + stamp),
        Committer(bootstrap, h, "nemesis-commits-" + stamp, args.partitions),
    ])
    producers, consumers = workers[:2], workers[2:4]
    workers.extend(OffsetWatcher(cluster, h, g, args.partitions) for g in h.consumers())
    for w in workers:
        w.start()
    # A quiet start: the workload runs before the first fault.
    time.sleep(5)
    say("workload running: %d sent, %d acknowledged, %s read" % (len(h.sent), len(h.acked), polled(h)))

    nem = Nemesis(cluster, h, rng, args.partitions, net.netns, args.kinds)
    end = time.monotonic() + args.duration
    n = 0
    while n < args.faults and time.monotonic() < end:
        n += 1
        kind = nem.next_kind()
        nem.inject(kind)
        rest = rng.uniform(2, 5)
        nem.sleep(rest)
        with h.lock:
            say("  after fault %d: %d sent, %d acknowledged, %d failed, %s read" %
                (n, len(h.sent), len(h.acked), len(h.failed), polled(h)))
    nem.heal_all()
    say("faults over (%d injected); healed; the workload runs 5 s more" % n)
    time.sleep(5)

    # Drain the producers, then let the consumers catch up (up to the high watermarks: a
    # consumer that does not within 60 s is stalled, a finding) and stop them.
    for w in producers:
        w.stop()
    for w in producers:
        w.join(ConfluentProducer.drain_seconds + 15)
        if w.is_alive():
            raise HarnessError("%s did not finish draining" % w.name)
    hws = {p: e[1] for p, e in watermarks(bootstrap, args.partitions, 30).items()}
    t_catch = now()
    deadline = time.monotonic() + 60
    while True:
        with h.lock:
            behind = {g.name: {p: (g.high.get(p, -1) + 1, hw) for p, hw in hws.items() if g.high.get(p, -1) + 1 < hw}
                      for g in h.consumers()}
        behind = {k: v for k, v in behind.items() if v}
        if not behind or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    stalled = [(name, "partition: (polled up to, high watermark) %s" % v) for name, v in sorted(behind.items())]
    if stalled:
        say("FINDING: consumers not up to the high watermarks %s within 60 s: %s" % (hws, stalled))
    else:
        say("consumers up to the high watermarks %s in %.1fs" % (hws, now() - t_catch))
    for w in consumers:
        w.stop()
    for w in consumers:
        w.join(30)
    for w in workers[4:]:
        w.stop()
    for w in workers[4:]:
        w.join(30)

    # Settle: every partition led with a full ISR, as every node sees it. A cluster that
    # does not is a finding (reported), and the history is checked all the same.
    t_settle = now()
    deadline = time.monotonic() + args.settle_timeout
    why = []
    settled = False
    while time.monotonic() < deadline:
        cluster.check_exits()
        settled, why = cluster.settled([TOPIC, "__consumer_offsets"])
        if settled:
            break
        time.sleep(0.5)
    if settled:
        say("settled in %.1fs (every partition led, every ISR full)" % (now() - t_settle))
    else:
        say("FINDING: the cluster did not settle within %ds after the last heal: %s" %
            (args.settle_timeout, "; ".join(why[:20])))

    for g in h.consumers():
        final_committed(cluster, h, g, args.partitions, 30)
    say("committed offsets after the run: %s" % "; ".join("%s %s" % (g.name, dict(sorted(g.final.items())))
                                                           for g in h.consumers()))

    ends, final = final_read_confluent(bootstrap, args.partitions, 60)
    final_kp = final_read_kafka_python(bootstrap, args.partitions, ends, 60)
    say("final read: %s records (high watermarks %s), confluent-kafka and kafka-python" %
        (sum(len(v) for v in final.values()), {p: e[1] for p, e in sorted(ends.items())}))

    parts = [(TOPIC, p, v[1], ends[p][1]) for p, v in sorted((cluster.topic_view() or {}).items())]
    parts += [("__consumer_offsets", p, v[1], None)
              for p, v in sorted((cluster.topic_view("__consumer_offsets") or {}).items())]
    t_cmp = now()
    checked, replica_problems = compare_replicas(cluster, parts, 15 if settled else 0)
    say("replicas compared in %.1fs" % (now() - t_cmp))

    res, details = check(h, ends, final, final_kp, args.partitions)
    res["replicas-differ"] = len(replica_problems)
    details["replicas-differ"] = replica_problems
    res["node-exits"] = len(cluster.unexpected_exits)
    details["node-exits"] = cluster.unexpected_exits
    res["not-settled"] = 0 if settled else 1
    details["not-settled"] = why
    res["stalled"] = len(stalled)
    details["stalled"] = stalled

    by_kind = collections.Counter(f["kind"] for f in h.faults)
    kill_fo = failover_times(h, {"kill"})
    other_fo = failover_times(h, {"pause", "isolate"})
    shutdown_fo = failover_times(h, {"shutdown"})
    present = {x for r in final.values() for _, x in r}
    unacked_present = sum(1 for v in h.sent if v not in h.acked and v in present)
    say("faults by kind: %s; on a consumer group's coordinator: %s" %
        (", ".join("%s %d" % kv for kv in sorted(by_kind.items())),
         ", ".join("%s %d" % (g.name, sum(1 for f in h.faults if g.name in f["coordinator_of"])) for g in h.consumers())))
    say("replicas compared byte for byte: %d partitions (%s and __consumer_offsets; those with 2+ replicas; "
        "__consumer_offsets record by record where compaction made its replicas differ)" % (checked, TOPIC))
    say("producer errors (retried or failed): %s" % (dict(h.producer_errors) or "none"))
    if h.producer_fatal:
        say("fatal producer errors (new producer id): %s" % h.producer_fatal)
    for g in h.groups.values():
        if g.name == "committer":
            say("committer: %d commits acknowledged, %d read back, errors %s" %
                (len({t for t, _p, _o in g.commits}), len(g.readbacks), dict(g.errors) or "none"))
        else:
            say("consumer %s: %d polled, %d rewinds (re-reads after a rebalance), %d commits acknowledged, "
                "%d read back (watcher errors %s), errors %s" %
                (g.name, len(g.reads), g.rewinds, len({t for t, _p, _o in g.commits}), len(g.readbacks),
                 dict(g.fetch_errors) or "none", dict(g.errors) or "none"))
    sd = [f for f in h.faults if f["kind"].startswith("shutdown")]
    if sd:
        sd_errors, sd_notices = shutdown_errors(h, "p0")
        kp_errors, kp_notices = shutdown_errors(h, "p1")
        exits = [f["exited"] - f["t"] for f in sd if f["status"] is not None]
        windows = [end - start for _f, start, end in shutdown_windows(h)]
        kp = kp_errors + kp_notices
        say("controlled shutdowns: %d; exit after the SIGTERM %s; window (until registered and unfenced again after "
            "the restart) %s; confluent-kafka producer within the windows: %d errors%s, %d failed connects to the "
            "stopped node; kafka-python producer within the windows (not checked): %d errors%s" %
            (len(sd), "p50 %.2fs max %.2fs" % (pct(exits, 50), max(exits)) if exits else "n/a",
             "p50 %.1fs max %.1fs" % (pct(windows, 50), max(windows)),
             len(sd_errors), " %s" % dict(collections.Counter(e[3] for e in sd_errors)) if sd_errors else "",
             len(sd_notices), len(kp), " %s" % dict(collections.Counter(e[3] for e in kp)) if kp else ""))
    failed_ok = {v for v in h.failed}
    say("sent %d: acknowledged %d, failed %d, unknown %d; not acknowledged but present: %d" %
        (len(h.sent), len(h.acked), len(failed_ok), len(h.sent) - len(h.acked) - len(failed_ok), unacked_present))

    def fmt(fo):
        xs, never = fo
        text = "p50 %.2fs max %.2fs over %d" % (pct(xs, 50), max(xs), len(xs)) if xs else "n/a"
        return text + (" (+%d never recovered)" % never if never else "")
    summary = ("SUMMARY faults %d (%s); acknowledged %d; lost %d; duplicated %d; inconsistent %d; "
               "polled %s; consumer-lost %d; poll-skips %d; stalled %d; gaps %d; commits-back %d; offsets-back %d; "
               "commits-missing %d; shutdown-errors %d; shutdown-failed %d; replicas-differ %d; node-exits %d; "
               "not-settled %d; "
               "failover after leader kill %s; after leader pause/isolation %s; produce pause after controlled "
               "shutdown %s; seed %s" %
               (len(h.faults), ", ".join("%s %d" % kv for kv in sorted(by_kind.items())), len(h.acked),
                res["lost"], res["duplicated"], res["inconsistent"], polled(h), res["consumer-lost"], res["poll-skips"],
                res["stalled"], res["gaps"], res["commits-back"], res["offsets-back"], res["commits-missing"],
                res["shutdown-errors"], res["shutdown-failed"], res["replicas-differ"], res["node-exits"],
                res["not-settled"],
                fmt(kill_fo), fmt(other_fo), fmt(shutdown_fo), args.seed))
    restarts = {w.name: w.errors for w in workers if w.errors}
    if restarts:
        say("clients started again after an unexpected exception: %s" % restarts)
    failed = [k for k, v in res.items() if v]
    for k in failed:
        say("FAIL %s: %d; first: %s" % (k, res[k], json.dumps(details[k], default=str)[:2000]))
    say(summary)
    if failed:
        dump_history(h, os.path.join(workdir, "history.json"))
        return 1
    say("nemesis OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
