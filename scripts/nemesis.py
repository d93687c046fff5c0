#!/usr/bin/env python3
"""Fault injection against a Strom cluster, checked the way Jepsen checks Kafka (issue 14).

Starts N `strom serve` nodes (every node broker and controller; default 3), creates a
topic with replication factor 3 and min.insync.replicas=2, and runs a workload while a
nemesis injects faults:

  producers  confluent-kafka (librdkafka) and kafka-python, both idempotent with
             acks=all, each writing unique values "p<producer>-<seq>" round-robin over
             the partitions; every value is recorded as sent, then acknowledged (with
             the partition and offset the ack reported), failed, or unknown;
  consumer   confluent-kafka in a consumer group (auto-commit), recording every
             (partition, offset, value) it polled;
  committer  a standalone confluent-kafka client committing an increasing counter as the
             offset of every partition for a group of its own, and reading it back
             (OffsetFetch): what the coordinator acknowledged must never go backwards.

Faults, one at a time, each healed before a short pause and the next one (targets chosen
from Metadata and DescribeQuorum at that moment: the leader of a partition of the topic,
a follower, or the metadata quorum's leader):

  kill       kill -9, restarted after a few seconds
  pause      SIGSTOP, SIGCONT after 1-6 s (below and above broker.session.timeout.ms)
  isolate    a network partition between one node and the others (both directions,
             client and controller traffic between nodes): the majority/minority split,
             aimed at a partition leader, a follower or the controller
  cut        a partition between two chosen nodes only (each still sees the third)

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
                  (group consumer, the two final readers), a value never sent: 0
  consumer-lost   values the group consumer polled that the final read lacks: 0
  poll skips      the group consumer jumping over offsets that exist: 0
  gaps            offsets per partition contiguous from 0 to the high watermark
  commits back    a committed offset read back lower than one acknowledged before: 0
  replicas        every replica's log (the record batches of its segment files) byte-
                  identical below the high watermark, and all ending at the same offset
  node exits      no node exited without being killed
  settled         within --settle-timeout of the last heal, every partition of the topic
                  and of __consumer_offsets led, with every replica in its ISR

It prints the faults injected by kind, the counts, and the failover time: from a kill -9
of a partition's leader until a record sent after the kill to that partition is
acknowledged (p50/max), and the same after a pause or isolation of a leader.

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


# --------------------------------------------------------------------------------------
# The cluster.


class Cluster:
    def __init__(self, strom, net, nodes, workdir, args):
        self.strom, self.net, self.nodes, self.dir, self.args = strom, net, nodes, workdir, args
        self.procs = {}
        self.state = {i: "down" for i in nodes}  # up | down | paused
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

    def pause(self, i):
        os.kill(self.procs[i].pid, signal.SIGSTOP)
        self.state[i] = "paused"

    def resume(self, i):
        p = self.procs.get(i)
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
        self.state[i] = "up"

    def check_exits(self):
        """Nodes that exited on their own: recorded (a finding) and started again."""
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

    def log_tail(self, i, n=30):
        try:
            with open(self.log_path(i), errors="replace") as f:
                return "".join(collections.deque(f, n))
        except OSError:
            return ""


# --------------------------------------------------------------------------------------
# History: everything the clients saw, with times (seconds since start, monotonic).


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}  # value -> (producer, partition, t)
        self.acked = {}  # value -> (partition, offset, t)
        self.failed = {}  # value -> (error, t)
        self.reads = []  # (partition, offset, value, t) polled by the group consumer
        self.poll_skips = []  # (partition, from offset, to offset, t)
        self.rewinds = 0
        self.consumer_errors = collections.Counter()
        self.producer_errors = collections.Counter()
        self.producer_fatal = []  # (producer, error, t)
        self.commits_acked = []  # (t acked, counter value)
        self.commit_readbacks = []  # (t asked, partition, value)
        self.commit_errors = collections.Counter()
        self.faults = []  # dicts

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
            except Exception as e:  # noqa: BLE001 - e.g. a fatal idempotence state
                self.h.fail(value, "send: %s" % type(e).__name__)
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
    def __init__(self, bootstrap, history, group):
        super().__init__("consumer")
        self.bootstrap, self.h, self.group = bootstrap, history, group
        self.last = {}

    def body(self):
        from confluent_kafka import Consumer
        h = self.h

        def on_assign(c, parts):
            for tp in parts:
                self.last[tp.partition] = None

        c = Consumer({
            "bootstrap.servers": self.bootstrap,
            "client.id": "nemesis-consumer",
            "group.id": self.group,
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
            "error_cb": lambda err: h.consumer_errors.update([err.name()]),
            "logger": CLIENT_LOG,
        })
        c.subscribe([TOPIC], on_assign=on_assign)
        try:
            while not self.stop_ev.is_set():
                msgs = c.consume(500, 0.2)
                t = now()
                for m in msgs:
                    if m.error():
                        h.consumer_errors[m.error().name()] += 1
                        continue
                    p, o, v = m.partition(), m.offset(), m.value().decode()
                    last = self.last.get(p)
                    with h.lock:
                        h.reads.append((p, o, v, t))
                        if last is not None and o > last + 1:
                            h.poll_skips.append((p, last, o, round(t, 1)))
                        elif last is not None and o <= last:
                            h.rewinds += 1
                    self.last[p] = o
        finally:
            c.close()


class Committer(Worker):
    """Commits an increasing counter for every partition (a group of its own, no members)
    and reads the commits back: an acknowledged commit must never be followed by a lower
    read-back."""

    def __init__(self, bootstrap, history, group, partitions):
        super().__init__("committer")
        self.bootstrap, self.h, self.group, self.partitions = bootstrap, history, group, partitions

    def body(self):
        from confluent_kafka import Consumer, KafkaException, TopicPartition
        c = Consumer({
            "bootstrap.servers": self.bootstrap,
            "client.id": "nemesis-committer",
            "group.id": self.group,
            "enable.auto.commit": False,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "socket.connection.setup.timeout.ms": 5000,
            "error_cb": lambda err: self.h.commit_errors.update([err.name()]),
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
                        with self.h.lock:
                            self.h.commits_acked.append((now(), k))
                    else:
                        self.h.commit_errors["commit partition error"] += 1
                except KafkaException as e:
                    self.h.commit_errors["commit %s" % e.args[0].name()] += 1
                asked = now()
                try:
                    got = c.committed([TopicPartition(TOPIC, p) for p in range(self.partitions)], timeout=3)
                    with self.h.lock:
                        for tp in got:
                            if tp.error is None and tp.offset >= 0:
                                self.h.commit_readbacks.append((asked, tp.partition, tp.offset))
                except KafkaException as e:
                    self.h.commit_errors["committed %s" % e.args[0].name()] += 1
        finally:
            c.close()


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


def compare_replicas(cluster, parts, wait_seconds):
    """parts: [(topic, partition, replicas, high watermark or None)]. The replicas' logs
    must be byte-identical below the high watermark (for None: below the smallest log end
    among them), and end at the same offset once the cluster settled (waited for, up to
    wait_seconds in all). Returns (partitions compared, [(topic, partition, problem)])."""
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
         "isolate-controller", "cut-leader", "kill-follower", "pause-controller", "isolate-follower"]
# (cut-follower and cut-controller are accepted by --kinds too.)


class Nemesis:
    def __init__(self, cluster, history, rng, partitions, netns, kinds):
        self.c, self.h, self.rng, self.partitions = cluster, history, rng, partitions
        self.kinds = [k for k in kinds if netns or not (k.startswith("isolate") or k.startswith("cut"))]
        if not self.kinds:
            raise HarnessError("no fault kind left to inject (network faults need the namespaces)")
        self.queue = []

    def next_kind(self):
        if not self.queue:
            self.queue = list(self.kinds)
            self.rng.shuffle(self.queue)
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
                 "led": sorted(led.get(node, [])), "controller": node == ctrl}
        rng = self.rng
        if action == "kill":
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
    consumer_lost = set()
    seen = {}
    for p, o, v, _t in h.reads:
        prev = seen.setdefault((p, o), v)
        if prev != v:
            inconsistent.append(("consumer read %r and %r at %d/%d" % (prev, v, p, o), v))
        if v not in where:
            consumer_lost.add(v)
        elif at.get((p, o)) != v:
            inconsistent.append(("consumer read it at %d/%d, final read there %r" % (p, o, at.get((p, o))), v))
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
    details["consumer-lost"] = sorted(consumer_lost)[:50]
    res["poll-skips"] = len(h.poll_skips)
    details["poll-skips"] = h.poll_skips[:50]
    # committed offsets: a read-back asked after commit k was acknowledged is >= k
    back = []
    acked = sorted(h.commits_acked)
    j, best = 0, 0
    for asked, p, value in sorted(h.commit_readbacks):
        while j < len(acked) and acked[j][0] < asked:
            best = max(best, acked[j][1])
            j += 1
        if value < best:
            back.append((round(asked, 1), p, value, best))
    res["commits-back"] = len(back)
    details["commits-back"] = back[:50]
    return res, details


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
                    help="fault kinds, comma-separated, each <kill|pause|isolate|cut>-<leader|follower|controller> "
                         "(default: all ten below, in shuffled rounds): %(default)s")
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
        if a not in ("kill", "pause", "isolate", "cut") or r not in ("leader", "follower", "controller"):
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
            json.dump({"sent": h.sent, "acked": h.acked, "failed": h.failed, "reads": h.reads,
                       "poll_skips": h.poll_skips, "commits_acked": h.commits_acked,
                       "commit_readbacks": h.commit_readbacks, "faults": h.faults,
                       "producer_fatal": h.producer_fatal}, f)
    except (OSError, TypeError) as e:
        say("could not write %s: %s" % (path, e))


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
        GroupConsumer(bootstrap, h, "nemesis-group-" + stamp),
        Committer(bootstrap, h, "nemesis-commits-" + stamp, args.partitions),
    ])
    for w in workers:
        w.start()
    # A quiet start: the workload runs before the first fault.
    time.sleep(5)
    say("workload running: %d sent, %d acknowledged, %d read" % (len(h.sent), len(h.acked), len(h.reads)))

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
            say("  after fault %d: %d sent, %d acknowledged, %d failed, %d read" %
                (n, len(h.sent), len(h.acked), len(h.failed), len(h.reads)))
    nem.heal_all()
    say("faults over (%d injected); healed; the workload runs 5 s more" % n)
    time.sleep(5)

    # Drain the producers, then let the consumer catch up a little and stop it.
    for w in workers[:2]:
        w.stop()
    for w in workers[:2]:
        w.join(ConfluentProducer.drain_seconds + 15)
        if w.is_alive():
            raise HarnessError("%s did not finish draining" % w.name)
    time.sleep(2)
    for w in workers[2:]:
        w.stop()
    for w in workers[2:]:
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

    by_kind = collections.Counter(f["kind"] for f in h.faults)
    kill_fo = failover_times(h, {"kill"})
    other_fo = failover_times(h, {"pause", "isolate"})
    present = {x for r in final.values() for _, x in r}
    unacked_present = sum(1 for v in h.sent if v not in h.acked and v in present)
    say("faults by kind: %s" % ", ".join("%s %d" % kv for kv in sorted(by_kind.items())))
    say("replicas compared byte for byte: %d partitions (%s and __consumer_offsets; those with 2+ replicas)" %
        (checked, TOPIC))
    say("producer errors (retried or failed): %s" % (dict(h.producer_errors) or "none"))
    if h.producer_fatal:
        say("fatal producer errors (new producer id): %s" % h.producer_fatal)
    say("consumer: %d polled, %d rewinds (re-reads after a rebalance), errors %s; committer: %d commits acknowledged, "
        "%d read back, errors %s" % (len(h.reads), h.rewinds, dict(h.consumer_errors) or "none",
                                     len(h.commits_acked), len(h.commit_readbacks), dict(h.commit_errors) or "none"))
    failed_ok = {v for v in h.failed}
    say("sent %d: acknowledged %d, failed %d, unknown %d; not acknowledged but present: %d" %
        (len(h.sent), len(h.acked), len(failed_ok), len(h.sent) - len(h.acked) - len(failed_ok), unacked_present))

    def fmt(fo):
        xs, never = fo
        text = "p50 %.2fs max %.2fs over %d" % (pct(xs, 50), max(xs), len(xs)) if xs else "n/a"
        return text + (" (+%d never recovered)" % never if never else "")
    summary = ("SUMMARY faults %d (%s); acknowledged %d; lost %d; duplicated %d; inconsistent %d; "
               "consumer-lost %d; poll-skips %d; gaps %d; commits-back %d; replicas-differ %d; node-exits %d; not-settled %d; "
               "failover after leader kill %s; after leader pause/isolation %s; seed %s" %
               (len(h.faults), ", ".join("%s %d" % kv for kv in sorted(by_kind.items())), len(h.acked),
                res["lost"], res["duplicated"], res["inconsistent"], res["consumer-lost"], res["poll-skips"],
                res["gaps"], res["commits-back"], res["replicas-differ"], res["node-exits"], res["not-settled"],
                fmt(kill_fo), fmt(other_fo), args.seed))
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
