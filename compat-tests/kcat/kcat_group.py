#!/usr/bin/env python3
"""Consumer-group scenarios for kcat's balanced consumer (`kcat -G`), run by the
group-*.sh scripts with system python3 (stdlib only).

Each member is one `kcat -G <group> -u -f 'MSG %t %p %o\\n' <topics>` process with
stdout and stderr on one pipe: kcat prints the records and its rebalance notices
("% Group g rebalanced ...: assigned: t [0], ..." / "revoked: ...", or with the
cooperative protocol "incremental assignment/revoke of N partition(s) ...: t [0], ...")
from the same thread in the order they happen, so a reader thread can follow each
member's assignment and check every record against it. Offsets are handled the way
kcat users get them: librdkafka's auto commit (stored when a record is handed to kcat,
committed periodically, on revoke and on close). Members stop with SIGTERM (kcat
closes the consumer: final commit, LeaveGroup). Topic setup goes through
kcat_admin.py (venv python), records are produced with `kcat -P`.

  kcat_group.py rebalance | resume | assignors | regex
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import compat  # noqa: E402
from compat import Deadline, fail, log, passed  # noqa: E402

VPY = os.path.join(HERE, "..", ".venv", "bin", "python")
PART_RE = re.compile(r"(\S+) \[(\d+)\]")
# librdkafka's own log lines (warnings, errors) also land on the pipe; keep them quiet
# unless they matter, so they do not interleave with record lines.
QUIET = ["-X", "log_level=3"]


def admin(*args, bootstrap=None):
    env = dict(os.environ)
    if bootstrap:
        env["STROM_BOOTSTRAP"] = bootstrap
    r = subprocess.run([VPY, os.path.join(HERE, "kcat_admin.py")] + list(args), env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode("utf-8", "replace").strip()
    if r.returncode != 0:
        fail("kcat_admin.py %s failed (exit %d): %s" % (" ".join(args), r.returncode, out[-500:]))
    log(out.splitlines()[-1] if out else "kcat_admin.py %s ok" % args[0])


def produce(bootstrap, topic, records):
    """kcat -P: [(partition, key, value)] of ASCII text; fails on any error."""
    by_part = {}
    for p, k, v in records:
        by_part.setdefault(p, []).append(b"%s\t%s\n" % (k, v))
    for p, lines in sorted(by_part.items()):
        r = subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", topic, "-p", str(p), "-K", "\t"],
                           input=b"".join(lines), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = r.stdout.decode("utf-8", "replace")
        if r.returncode != 0 or "delivery failed" in out.lower():
            fail("kcat -P to %s [%d] exited with %d: %s" % (topic, p, r.returncode, out[-500:]))


class Member:
    """One `kcat -G` process; `owned` follows its rebalance notices, `records` what it printed."""

    def __init__(self, name, bootstrap, group, topics, extra=(), lock=None, on_record=None, on_rebalance=None):
        self.name = name
        self.lock = lock or threading.Lock()
        self.on_record = on_record
        self.on_rebalance = on_rebalance
        self.owned = set()
        self.records = []  # (topic, partition, offset)
        self.events = []  # (seconds since start, "assign"/"revoke", [(topic, partition)])
        self.noise = []
        self.errors = []
        self.started = time.monotonic()
        argv = ["kcat", "-b", bootstrap, "-G", group, "-u", "-f", "MSG %t %p %o\\n",
                "-X", "client.id=%s" % name, "-X", "auto.offset.reset=earliest"] + QUIET + list(extra) + list(topics)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                if line.startswith("MSG "):
                    try:
                        _, t, p, o = line.split(" ")
                        rec = (t, int(p), int(o))
                    except ValueError:
                        self.errors.append("%s: unparseable record line %r" % (self.name, line))
                        continue
                    if (rec[0], rec[1]) not in self.owned:
                        self.errors.append("%s got %s [%d] offset %d but owns %s" % (
                            self.name, rec[0], rec[1], rec[2], sorted(self.owned)))
                    self.records.append(rec)
                    if self.on_record:
                        self.on_record(self, rec)
                elif "rebalanced" in line:
                    parts = [(t, int(p)) for t, p in PART_RE.findall(line.split("):", 1)[-1])]
                    incremental = "incremental" in line
                    if "assigned:" in line or "incremental assignment" in line:
                        self.owned = (self.owned | set(parts)) if incremental else set(parts)
                        self.events.append((time.monotonic() - self.started, "assign", parts))
                    elif "revoked:" in line or "incremental revoke" in line:
                        self.owned = (self.owned - set(parts)) if incremental else set()
                        self.events.append((time.monotonic() - self.started, "revoke", parts))
                    else:
                        self.noise.append(line)
                        continue
                    if self.on_rebalance:
                        self.on_rebalance(self)
                elif not line.startswith("% Reached end of topic"):
                    self.noise.append(line)

    def partitions(self, topic=None):
        with self.lock:
            return sorted(p for t, p in self.owned if topic is None or t == topic)

    def stop(self, timeout=30):
        """SIGTERM: kcat closes the consumer (commit, LeaveGroup) and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("%s: kcat did not exit within %ds of SIGTERM" % (self.name, timeout))
        self.thread.join(timeout=10)
        return self.proc.returncode

    def tail(self):
        return " | ".join(self.noise[-5:])


def wait(members, until, timeout, what):
    dl = Deadline(timeout)
    while not dl.expired():
        for m in members:
            if m.errors:
                fail(m.errors[0])
            if m.proc.poll() is not None and m.proc.returncode not in (0,):
                fail("%s: kcat exited with %s: %s" % (m.name, m.proc.returncode, m.tail()))
        if until():
            return
        time.sleep(0.1)
    fail("timed out after %ds waiting for %s; owners %s%s" % (
        timeout, what, {m.name: m.partitions() for m in members},
        "".join("; %s said: %s" % (m.name, m.tail()) for m in members if m.noise)))


# ---------------------------------------------------------------- scenarios


def rebalance(bootstrap):
    """Three members on a 6-partition topic get two partitions each; one leaves (SIGTERM)
    and the other two take its partitions over. Every record is delivered exactly once,
    only to the member owning its partition at that moment. The auto-commit timer is
    set to 60 s, so what is committed is what librdkafka commits when partitions are
    revoked (eager protocol: before rejoining, while the group is PreparingRebalance)
    and when the leaving member closes; on Kafka those commits succeed, so nothing
    is delivered twice."""
    topic = compat.topic("-grp")
    group = compat.topic("-group")
    admin("create", topic, "6")
    produce(bootstrap, topic, [(i % 6, b"k%d" % i, b"first-%d" % i) for i in range(600)])
    lock = threading.Lock()
    delivered = {}
    dups = []

    def on_record(m, rec):
        if rec in delivered:
            dups.append((rec, delivered[rec], m.name))
        delivered[rec] = m.name

    extra = ["-X", "session.timeout.ms=10000", "-X", "heartbeat.interval.ms=500", "-X", "auto.commit.interval.ms=60000",
             "-X", "log_level=4"]  # warnings: librdkafka reports failed commits (COMMITFAIL)
    t0 = time.monotonic()
    members = [Member(n, bootstrap, group, [topic], extra, lock, on_record) for n in ("m1", "m2", "m3")]
    all_members = list(members)
    wait(members, lambda: len(delivered) == 600 and all(len(m.partitions()) == 2 for m in members), 90,
         "3 members with 2 partitions each and all 600 records")
    first = {m.name: m.partitions() for m in members}
    log("3 members: %s after %.1fs" % (first, time.monotonic() - t0))
    if sorted(sum(first.values(), [])) != list(range(6)):
        fail("assignment does not cover the 6 partitions exactly: %s" % first)
    log("m3 leaves (SIGTERM)")
    rc = members[2].stop()
    if rc != 0:
        fail("m3: kcat exited with %s after SIGTERM: %s" % (rc, members[2].tail()))
    members = members[:2]
    produce(bootstrap, topic, [(i % 6, b"k%d" % i, b"second-%d" % i) for i in range(600)])
    wait(members, lambda: len(delivered) == 1200 and all(len(m.partitions()) == 3 for m in members), 90,
         "2 members with 3 partitions each and all 1200 records")
    final = {m.name: m.partitions() for m in members}
    for m in members:
        m.stop()
    if set(final["m1"]) & set(final["m2"]) or set(final["m1"]) | set(final["m2"]) != set(range(6)):
        fail("final assignment overlaps or misses partitions: %s" % final)
    want = {(topic, p, o) for p in range(6) for o in range(200)}
    if set(delivered) != want:
        fail("records delivered %d, expected the 1200 of offsets 0..199 on 6 partitions; missing e.g. %s" % (
            len(delivered), sorted(want - set(delivered))[:3]))
    if dups:
        said = [line for m in all_members for line in m.noise if "commit" in line.lower()]
        fail("%d record(s) delivered twice; first: %s [%d] offset %d to %s and again to %s%s" % (
            len(dups), dups[0][0][0], dups[0][0][1], dups[0][0][2], dups[0][1], dups[0][2],
            "; librdkafka said: %s" % said[0] if said else ""))
    passed("2+2+2 %s then 3+3 %s; 1200 records, each exactly once, to its partition's owner" % (first, final))


def resume(bootstrap_unused):
    """A lone member reads 60 of 100 records (-c 60) and exits (close commits offset
    60); the broker restarts; a new member of the group (-e) reads exactly 60..99."""
    from broker import OwnBroker

    own = OwnBroker().start()
    # compat.passed()/fail() end the process with os._exit(), which skips `finally`:
    # stop and remove the own broker on that path too (the runner kills the process
    # group anyway, but not when the scenario runs by hand).
    os_exit = os._exit

    def exit_closing_broker(code):
        try:
            own.close()
        finally:
            os_exit(code)

    os._exit = exit_closing_broker
    try:
        bootstrap = own.bootstrap
        topic = compat.topic("-resume")
        group = compat.topic("-resume-group")
        admin("create", topic, "1", bootstrap=bootstrap)
        produce(bootstrap, topic, [(0, b"k%d" % i, b"v%d" % i) for i in range(100)])

        m = Member("first", bootstrap, group, [topic], ["-c", "60"])
        try:
            m.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            fail("first member did not exit after 60 records (got %d): %s" % (len(m.records), m.tail()))
        m.thread.join(timeout=10)
        if m.errors:
            fail(m.errors[0])
        offsets = [o for _, _, o in m.records]
        if m.proc.returncode != 0 or offsets != list(range(60)):
            fail("first member (exit %s) read offsets %s..., expected 0..59: %s" % (m.proc.returncode, offsets[:10], m.tail()))
        join_s = next((t for t, kind, _ in m.events if kind == "assign"), None)

        log("restarting the broker")
        own.restart()
        m = Member("second", bootstrap, group, [topic], ["-e"])
        try:
            m.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            m.stop()
            fail("second member did not reach the end of the partition (read %s)" % [o for _, _, o in m.records][:10])
        m.thread.join(timeout=10)
        if m.errors:
            fail(m.errors[0])
        offsets = [o for _, _, o in m.records]
        d = compat.first_diff(list(range(60, 100)), offsets, "offset")
        if d or m.proc.returncode != 0:
            fail("after the restart (exit %s), expected offsets 60..99: %s" % (m.proc.returncode, d))
        if join_s is None or join_s > 3.0 + 5.0:
            fail("first assignment after %s s, far beyond the 3 s initial rebalance delay" % join_s)
        passed("resumed at offset 60 after restart (kcat -c 60 committed on close); start→assignment %.2fs" % join_s)
    finally:
        own.close()


def assignors(bootstrap):
    """For range, roundrobin and cooperative-sticky (partition.assignment.strategy), a
    first member takes all 4 partitions, a second joins, and they end with 2 each,
    disjoint, without a partition owned by both at once (as far as the two processes'
    notices show)."""
    results = []
    for strategy in ("range", "roundrobin", "cooperative-sticky"):
        topic = compat.topic("-" + strategy)
        group = compat.topic("-" + strategy + "-group")
        admin("create", topic, "4")
        lock = threading.Lock()
        extra = ["-X", "partition.assignment.strategy=%s" % strategy, "-X", "session.timeout.ms=10000",
                 "-X", "heartbeat.interval.ms=500"]
        members = []
        overlaps = []

        def check_overlap(_member):
            # Called under `lock` after every rebalance notice of either member.
            if len(members) == 2 and members[0].owned & members[1].owned:
                overlaps.append(sorted(p for _, p in members[0].owned & members[1].owned))

        t0 = time.monotonic()
        members.append(Member("a", bootstrap, group, [topic], extra, lock, on_rebalance=check_overlap))
        wait(members, lambda: members[0].partitions() == [0, 1, 2, 3], 60, "%s: a owns all 4 partitions" % strategy)
        members.append(Member("b", bootstrap, group, [topic], extra, lock, on_rebalance=check_overlap))
        wait(members, lambda: [len(m.partitions()) for m in members] == [2, 2], 60, "%s: loads [2, 2]" % strategy)
        final = {m.name: m.partitions() for m in members}
        for m in members:
            m.stop()
        if overlaps:
            fail("%s: partitions %s owned by a and b at once" % (strategy, overlaps[0]))
        if set(final["a"]) & set(final["b"]) or set(final["a"]) | set(final["b"]) != set(range(4)):
            fail("%s: final assignment %s" % (strategy, final))
        log("%s: %s in %.1fs" % (strategy, final, time.monotonic() - t0))
        results.append("%s %s/%s" % (strategy, final["a"], final["b"]))
    passed("; ".join(results))


def regex(bootstrap):
    """Subscription to "^<prefix>-(a|b|c)$" (librdkafka matches it client-side, classic
    protocol): the member gets the partitions of a and b, not of other, and picks up c
    once it is created (topic.metadata.refresh.interval.ms=1000)."""
    prefix = compat.topic("-rx")
    for suffix in ("a", "b", "other"):
        admin("create", "%s-%s" % (prefix, suffix), "2")
    pattern = "^%s-(a|b|c)$" % prefix.replace(".", "\\.")
    m = Member("rx", bootstrap, prefix + "-group", [pattern], ["-X", "topic.metadata.refresh.interval.ms=1000"])
    ab = {("%s-%s" % (prefix, t), p) for t in ("a", "b") for p in (0, 1)}

    def owns(want):
        with m.lock:
            return m.owned == want

    wait([m], lambda: owns(ab), 60, "partitions of a and b")
    admin("create", prefix + "-c", "2")
    abc = ab | {(prefix + "-c", p) for p in (0, 1)}
    wait([m], lambda: owns(abc), 60, "partitions of a, b and c (created later)")
    m.stop()
    passed("kcat -G '%s': matched a and b (not other), then picked up c created later" % pattern)


if __name__ == "__main__":
    scenarios = {"rebalance": rebalance, "resume": resume, "assignors": assignors, "regex": regex}
    if len(sys.argv) != 2 or sys.argv[1] not in scenarios:
        print(__doc__)
        sys.exit(2)
    scenarios[sys.argv[1]](compat.bootstrap())
