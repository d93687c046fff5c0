"""Exactly-once consume-transform-produce across broker and application kill -9.

The scenario starts its own broker (lib/broker.py's OwnBroker from STROM_BIN, fresh
data dir, log.flush.interval.messages=1, as `crash` does), creates an input and an
output topic (4 partitions each) and fills the input with COMPAT_EOS_RECORDS records
(default 20,000 here and in CI; the long run is COMPAT_EOS_RECORDS=100000) from an
idempotent producer: value "in-<n>", key "<n>", partition n % 4.

The application is this script run as a subprocess (`eos.py app ...`), so that it can
be killed with SIGKILL: a confluent-kafka group consumer (isolation.level=read_committed,
enable.auto.commit=false, one fixed group id, session.timeout.ms=6000) and a
transactional producer (one fixed transactional.id). It consumes, opens a transaction
at the first record, produces "out-<n>" to the same partition of the output topic for
every record consumed, and after ~100 ms (or COMPAT_EOS_BATCH records, default 500)
calls send_offsets_to_transaction(position(assignment), consumer_group_metadata()) and
commit_transaction. Consumption is paced at COMPAT_EOS_RATE records/s (default N/20, so
~20 s of processing whatever N; unpaced it would finish 20,000 records in under a
second, before the kills), so a transaction is open almost all the time and the kills
hit open transactions. Retriable errors are retried (bounded), abortable ones abort the
transaction and rewind the consumer to the group's committed offsets, a revocation
aborts the open transaction, fatal or unrecoverable errors exit non-zero and the driver
starts a new instance (as after its own kills: the new InitProducerId fences the old
instance and aborts its open transaction). kill -USR1 <app pid> dumps its Python stack
into app.log; COMPAT_EOS_DEBUG=eos,cgrp,... turns on librdkafka debug logging there.

The driver follows progress with a read_committed reader of the output topic and, at
15/30/45/60/75 % of the input, kills the broker with SIGKILL (restarted on the same
port and data dir) three times and the application with SIGKILL twice (restarted).
When the group's committed offsets (ListConsumerGroupOffsets, require_stable) equal the
input's end offsets the application is stopped (SIGTERM) and the output topic is read
with read_committed: every input record must appear exactly once (lost and duplicated
are counted and printed), in its input partition and in input order, and the committed
offsets must equal the end offsets. It prints the transactions the application
instances reported committed/aborted, the records in aborted transactions (a
read_uncommitted read minus the read_committed one) and a closing line
`SUMMARY eos input N; output-read M; lost L; duplicated D; broker-kills 3; app-kills 2;
elapsed S s`.

Every wait is bounded (no progress for COMPAT_EOS_STALL seconds, default 60, fails) and
the whole scenario has a deadline (COMPAT_EOS_DEADLINE, default 240 s + 2 s per 1,000
records above 20,000). Processes are always cleaned up; on failure the broker data dir
with strom.log, app.log (all instances) and app.events is kept and its path printed
(also on success with COMPAT_EOS_KEEP=1).
"""

import ctypes
import faulthandler
import os
import random
import signal
import socket
import subprocess
import sys
import time
import traceback

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 4
RECORDS = int(os.environ.get("COMPAT_EOS_RECORDS", "20000"))
BATCH = int(os.environ.get("COMPAT_EOS_BATCH", "500"))
# The application is paced so that the kills land during the run, not after it: without
# pacing it processes 20,000 records in well under a second.
RATE = float(os.environ.get("COMPAT_EOS_RATE", str(max(100, RECORDS / 20))))
STALL = float(os.environ.get("COMPAT_EOS_STALL", "60"))
DEADLINE = float(os.environ.get("COMPAT_EOS_DEADLINE", str(240 + max(0, RECORDS - 20000) * 0.002)))
# (fraction of the input committed to the output, what to kill)
SCHEDULE = [(0.15, "broker"), (0.30, "app"), (0.45, "broker"), (0.60, "app"), (0.75, "broker")]
TXN_TIMEOUT_MS = 20000
COMMIT_INTERVAL = 0.1  # seconds a transaction stays open (or BATCH records)
# librdkafka >= 2.10 starts a re-bootstrap when all brokers are down (here: the only
# broker was killed) and decommissions the broker handles it knew. 2.16.0 keeps the
# decommissioned handle cached as group coordinator, so the next TxnOffsetCommit of
# send_offsets_to_transaction() waits on a dead handle and is never sent (the call times
# out; the restarted broker answers everything else): librdkafka issue #5511 (fix in PR
# #5512). The broker address never changes here, so re-bootstrapping is turned off.
CLIENT_COMMON = {"metadata.recovery.strategy": "none"}
SEED = int(os.environ.get("COMPAT_EOS_SEED", str(int(time.time()))))
APP_RESTARTS_MAX = 20  # restarts after the application exited by itself (fatal errors)


def ts():
    return time.strftime("%H:%M:%S")


def set_pdeathsig():
    """preexec_fn: the child gets SIGKILL when the driver dies (no orphans when the
    driver itself is killed, e.g. by the runner's timeout outside a process group)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


# ---------------------------------------------------------------------------
# The application (a subprocess: `eos.py app BOOTSTRAP IN OUT GROUP TXNID EVENTS`)


def app_main(bootstrap, in_topic, out_topic, group, tid, events_path):
    parent = os.getppid()
    ev = open(events_path, "a", buffering=1)
    stop = [False]
    stats = {"C": 0, "A": 0, "records": 0}
    txn = {"open": False, "recs": 0, "since": 0.0}

    def say(msg):
        print("[%s app %d] %s" % (ts(), os.getpid(), msg), flush=True)

    def event(kind, n=0, detail=""):
        ev.write("%d %s %d %s\n" % (os.getpid(), kind, n, detail))

    def die(code, msg):
        say("exit %d: %s" % (code, msg))
        event("X", code, msg.replace("\n", " "))
        ev.flush()
        os._exit(code)

    def error_cb(err):
        say("client error: %s" % err)
        if err.fatal():
            event("F", 0, err.name())

    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <app pid>: Python stacks into app.log
    event("S", 0, "start")
    debug = {"debug": os.environ["COMPAT_EOS_DEBUG"]} if os.environ.get("COMPAT_EOS_DEBUG") else {}

    producer = Producer({
        **CLIENT_COMMON,
        "bootstrap.servers": bootstrap,
        "transactional.id": tid,
        "transaction.timeout.ms": TXN_TIMEOUT_MS,
        "linger.ms": 5,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "retry.backoff.ms": 50,
        "error_cb": error_cb,
        **debug,
    })
    consumer = Consumer({
        **CLIENT_COMMON,
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "error_cb": error_cb,
        **debug,
    })

    def retry(what, fn, *args, limit=60):
        """Call fn, retrying retriable errors for up to `limit` seconds."""
        end = time.monotonic() + limit
        while True:
            try:
                return fn(*args)
            except KafkaException as e:
                err = e.args[0]
                if err.retriable() and not err.fatal() and not err.txn_requires_abort() and time.monotonic() < end:
                    event("R", 0, "%s:%s" % (what, err.name()))
                    say("%s: retriable %s, retrying" % (what, err))
                    time.sleep(0.2)
                    continue
                raise

    try:
        retry("init_transactions", producer.init_transactions, 30)
    except KafkaException as e:
        die(4, "init_transactions failed: %s" % e.args[0])
    say("init_transactions done (transactional.id %s)" % tid)

    def rewind():
        """After an abort: move every assigned partition back to the group's committed
        offset (the aborted transaction's records must be processed again)."""
        assignment = consumer.assignment()
        if not assignment:
            return
        committed = retry("committed", consumer.committed, assignment, 30)
        for tp in committed:
            off = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(TopicPartition(tp.topic, tp.partition, off))
        say("rewound to committed offsets %s" % {tp.partition: tp.offset for tp in committed})

    def abort(reason, rewind_after):
        try:
            retry("abort_transaction", producer.abort_transaction, 30)
            stats["A"] += 1
            event("A", txn["recs"], reason)
            say("aborted a transaction of %d records (%s)" % (txn["recs"], reason))
            txn.update(open=False, recs=0)
            if rewind_after:
                rewind()
        except KafkaException as e:
            err = e.args[0]
            die(2 if err.fatal() else 3, "abort/rewind after %s failed: %s" % (reason, err))

    def on_assign(c, parts):
        say("assigned %s" % [p.partition for p in parts])

    def on_revoke(c, parts):
        # Eager rebalance: the partitions (and their fetch positions) go away; the open
        # transaction holds their records, so abort it. The next assignment starts
        # from the group's committed offsets.
        say("revoked %s" % [p.partition for p in parts])
        if txn["open"]:
            abort("partitions revoked", False)

    consumer.subscribe([in_topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)

    def commit():
        positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
        retry("send_offsets_to_transaction", producer.send_offsets_to_transaction, positions,
              consumer.consumer_group_metadata(), 30)
        retry("commit_transaction", producer.commit_transaction, 30)
        stats["C"] += 1
        stats["records"] += txn["recs"]
        event("C", txn["recs"])
        txn.update(open=False, recs=0)

    def process(msgs):
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    die(2, "fatal consumer error: %s" % err)
                say("consumer error: %s" % err)
                continue
            if not txn["open"]:
                producer.begin_transaction()
                txn.update(open=True, recs=0, since=time.monotonic())
            v = m.value()
            out = b"out-" + v[3:] if v and v.startswith(b"in-") else b"out-bad-" + (v or b"")
            while True:
                try:
                    producer.produce(out_topic, key=m.key(), value=out, partition=m.partition())
                    break
                except BufferError:
                    producer.poll(0.05)
            txn["recs"] += 1
        producer.poll(0)

    # The transaction stays open while records are consumed and produced, and is
    # committed after COMMIT_INTERVAL or BATCH records; consumption is paced at RATE.
    last_status = time.monotonic()
    paced_from, paced = time.monotonic(), 0
    while True:
        if os.getppid() != parent:
            die(5, "driver gone")
        now = time.monotonic()
        if now - last_status > 5:
            say("status: %d committed (%d records), %d aborted" % (stats["C"], stats["records"], stats["A"]))
            last_status = now
        try:
            if txn["open"] and (stop[0] or now - txn["since"] >= COMMIT_INTERVAL or txn["recs"] >= BATCH):
                commit()
                continue
            if stop[0]:
                break
            ahead = paced_from + paced / RATE - now
            if ahead < -0.1:  # behind (waiting for an assignment, a broker): no catch-up burst
                paced_from += -ahead - 0.1
            if ahead > 0:
                time.sleep(min(ahead, 0.02))
                continue
            msgs = consumer.consume(max(1, min(BATCH - txn["recs"], int(RATE * 0.02) + 1)), 0.05)
            paced += len(msgs)
            process(msgs)
        except KafkaException as e:
            err = e.args[0]
            if err.fatal():
                die(2, "fatal error: %s" % err)
            if not err.txn_requires_abort():
                die(3, "transaction failed, neither abortable nor retriable in time: %s" % err)
            say("abortable error: %s; aborting" % err)
            abort(err.name(), True)
    say("SIGTERM: %d committed (%d records), %d aborted; closing" % (stats["C"], stats["records"], stats["A"]))
    event("T", 0, "stopped")
    consumer.close()
    producer.flush(10)
    ev.close()
    os._exit(0)


# ---------------------------------------------------------------------------
# The driver

if __name__ == "__main__" and len(sys.argv) == 8 and sys.argv[1] == "app":
    app_main(*sys.argv[2:])

import compat  # noqa: E402 - the app above needs nothing from lib/
from broker import OwnBroker  # noqa: E402
from compat import Deadline, log  # noqa: E402


class Failure(Exception):
    pass


class EosBroker(OwnBroker):
    """OwnBroker (same command line as crash.py's), but a start that fails raises
    Failure (so the driver still cleans up) and the broker dies with the driver."""

    def start(self, timeout=30):
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listeners", "PLAINTEXT://127.0.0.1:%d" % self.port,
             "--log-dirs", os.path.join(self.dir, "data"),
             "--override", "strom.http.listener=127.0.0.1:0"] + self.extra,
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, preexec_fn=set_pdeathsig)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise Failure("broker exited with %s during startup" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise Failure("broker did not accept connections within %ds" % timeout)


class App:
    def __init__(self, workdir, args):
        self.args = args
        self.logpath = os.path.join(workdir, "app.log")
        self.events = os.path.join(workdir, "app.events")
        self.proc = None
        self.instances = 0

    def start(self):
        self.instances += 1
        with open(self.logpath, "ab") as f:
            f.write(b"===== %s instance %d\n" % (ts().encode(), self.instances))
            self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "app", *self.args, self.events],
                                         stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                         preexec_fn=set_pdeathsig)
        log("application instance %d started (pid %d)" % (self.instances, self.proc.pid))

    def exited(self):
        return self.proc is not None and self.proc.poll() is not None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout=20):
        """SIGTERM (the app finishes its transaction and closes), SIGKILL after timeout.
        Returns True if it exited by itself."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def event_counts(self):
        counts = {"C": 0, "A": 0, "R": 0, "X": 0, "F": 0, "Crecords": 0, "Arecords": 0}
        exits = []
        try:
            with open(self.events) as f:
                for line in f:
                    parts = line.split(None, 3)
                    if len(parts) < 3:
                        continue  # torn last line of a killed instance
                    kind, n = parts[1], int(parts[2]) if parts[2].isdigit() else 0
                    if kind in counts:
                        counts[kind] += 1
                    if kind == "C":
                        counts["Crecords"] += n
                    if kind == "A":
                        counts["Arecords"] += n
                    if kind == "X":
                        exits.append(line.strip())
        except OSError:
            pass
        return counts, exits


def tail(path, n):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()[-n:]
    except OSError as e:
        return ["(cannot read %s: %s)" % (path, e)]


def value_number(v, prefix):
    if v is None or not v.startswith(prefix):
        return None
    try:
        return int(v[len(prefix):])
    except ValueError:
        return None


def main(state):
    t0 = state["t0"]
    dl = Deadline(DEADLINE)

    def check_deadline(what):
        if dl.expired():
            raise Failure("overall deadline of %.0fs passed while %s" % (DEADLINE, what))

    rng = random.Random(SEED)
    log("%d records, paced at %.0f/s, seed %d (COMPAT_EOS_SEED)" % (RECORDS, RATE, SEED))
    own = EosBroker(["--override", "log.flush.interval.messages=1"])
    state["broker"] = own
    own.start()
    log("broker on %s, data in %s" % (own.bootstrap, own.dir))
    in_topic, out_topic = compat.topic("-eos-in"), compat.topic("-eos-out")
    group, tid = compat.topic("-eos-group"), compat.topic("-eos-txn")
    admin = AdminClient({**CLIENT_COMMON, "bootstrap.servers": own.bootstrap})
    for t, f in admin.create_topics([NewTopic(in_topic, PARTITIONS, 1), NewTopic(out_topic, PARTITIONS, 1)]).items():
        f.result(timeout=30)

    # -- fill the input with an idempotent producer
    p = Producer({"bootstrap.servers": own.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 10,
                  "queue.buffering.max.messages": 200000})
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))

    for n in range(RECORDS):
        while True:
            try:
                p.produce(in_topic, key=b"%d" % n, value=b"in-%d" % n, partition=n % PARTITIONS,
                          on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        if n % 1000 == 0:
            p.poll(0)
    left = p.flush(120)
    if left or errors:
        raise Failure("filling the input: %d undelivered, %d errors %s" % (left, len(errors), errors[:3]))
    probe = Consumer({"bootstrap.servers": own.bootstrap, "group.id": "eos-probe-unused", "enable.auto.commit": False})
    ends = {q: probe.get_watermark_offsets(TopicPartition(in_topic, q), timeout=10, cached=False)[1]
            for q in range(PARTITIONS)}
    probe.close()
    if sum(ends.values()) != RECORDS:
        raise Failure("input holds %d records (end offsets %s), produced %d" % (sum(ends.values()), ends, RECORDS))
    log("input %s filled: %d records, end offsets %s (%.1fs)" % (in_topic, RECORDS, ends, time.monotonic() - t0))

    # -- the application, a progress reader of the output, the kills
    app = App(own.dir, [own.bootstrap, in_topic, out_topic, group, tid])
    state["app"] = app
    app.start()
    t_app = time.monotonic()
    mon = Consumer({**CLIENT_COMMON, "bootstrap.servers": own.bootstrap, "group.id": "eos-monitor-unused", "enable.auto.commit": False,
                    "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                    "reconnect.backoff.max.ms": 500})
    mon.assign([TopicPartition(out_topic, q, OFFSET_BEGINNING) for q in range(PARTITIONS)])
    seen = set()
    progress = {"last": 0, "at": time.monotonic()}

    def pump(timeout):
        for m in mon.consume(2000, timeout):
            if m.error() is None:
                n = value_number(m.value(), b"out-")
                if n is not None:
                    seen.add(n)
        if len(seen) != progress["last"]:
            progress["last"], progress["at"] = len(seen), time.monotonic()

    def watch_app(what):
        if own.proc is not None and own.proc.poll() is not None:
            raise Failure("the broker exited by itself with status %s while %s" % (own.proc.returncode, what))
        if app.exited():
            rc = app.proc.returncode
            state["app_restarts"] += 1
            log("application exited by itself with status %s while %s; restarting (%d)" % (
                rc, what, state["app_restarts"]))
            if state["app_restarts"] > APP_RESTARTS_MAX:
                raise Failure("application exited %d times by itself" % state["app_restarts"])
            app.start()
        check_deadline(what)

    def stalled():
        return time.monotonic() - progress["at"] > STALL

    for frac, what in SCHEDULE:
        target = int(frac * RECORDS)
        while len(seen) < target:
            pump(0.2)
            watch_app("waiting for %d output records" % target)
            if stalled():
                raise Failure("no progress for %.0fs: %d of %d output records read (read_committed), waiting for %d"
                              % (STALL, len(seen), RECORDS, target))
        # The output advances at commits: a random delay puts the kill anywhere in the
        # next transaction, not just after a commit.
        time.sleep(rng.uniform(0, 0.25))
        if what == "broker":
            state["broker_kills"] += 1
            log("kill -9 broker (%d/3) at %d output records" % (state["broker_kills"], len(seen)))
            own.stop(kill=True)
            time.sleep(0.2)
            own.start()
            log("broker restarted")
        else:
            state["app_kills"] += 1
            log("kill -9 application (%d/2) at %d output records" % (state["app_kills"], len(seen)))
            app.kill()
            app.start()
        progress["at"] = time.monotonic()  # the kill itself is not a stall

    # -- wait until the group has committed the whole input
    req = [ConsumerGroupTopicPartitions(group, [TopicPartition(in_topic, q) for q in range(PARTITIONS)])]

    def committed_offsets(timeout=10):
        res = admin.list_consumer_group_offsets(req, require_stable=True, request_timeout=timeout)[group].result()
        out = {}
        for tp in res.topic_partitions:
            if tp.error is not None:
                raise KafkaException(tp.error)
            out[tp.partition] = tp.offset
        return out

    last_offsets, last_check = None, 0
    while True:
        pump(0.2)
        watch_app("waiting for the group to commit the end offsets")
        if time.monotonic() - last_check > 0.5:
            last_check = time.monotonic()
            try:
                last_offsets = committed_offsets()
            except KafkaException as e:
                log("list_consumer_group_offsets: %s" % e)
            if last_offsets == ends:
                break
        if stalled():
            raise Failure("no progress for %.0fs: committed offsets %s, end offsets %s, %d output records read"
                          % (STALL, last_offsets, ends, len(seen)))
    processing = time.monotonic() - t_app
    log("group %s committed the end offsets %s; processing took %.1fs" % (group, ends, processing))
    mon.close()
    if not app.stop():
        log("application did not exit 20 s after SIGTERM; killed")
    log("application stopped (status %s)" % app.proc.returncode)

    # -- verify
    def read_all(isolation, timeout):
        c = Consumer({"bootstrap.servers": own.bootstrap, "group.id": "eos-verify-unused", "enable.auto.commit": False,
                      "isolation.level": isolation, "enable.partition.eof": True, "check.crcs": True})
        highs = {q: c.get_watermark_offsets(TopicPartition(out_topic, q), timeout=10, cached=False)[1]
                 for q in range(PARTITIONS)}
        c.assign([TopicPartition(out_topic, q, OFFSET_BEGINNING) for q in range(PARTITIONS)])
        got, eof = {q: [] for q in range(PARTITIONS)}, {}
        end = time.monotonic() + timeout
        while not all(eof.get(q, -1) >= highs[q] for q in range(PARTITIONS)):
            if time.monotonic() > end:
                raise Failure("%s read of the output: after %ds %s records, EOF at %s, high watermarks %s" % (
                    isolation, timeout, {q: len(r) for q, r in got.items()}, eof, highs))
            for m in c.consume(5000, 0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof[m.partition()] = m.offset()
                        continue
                    raise Failure("%s read of the output: %s" % (isolation, err))
                got[m.partition()].append((m.offset(), m.value()))
                eof.pop(m.partition(), None)
        c.close()
        return got, highs

    got, highs = read_all("read_committed", TXN_TIMEOUT_MS / 1000 + 60)
    state["output_read"] = sum(len(r) for r in got.values())
    count, bad, misplaced, disorder = {}, [], [], []
    for q, recs in got.items():
        prev = -1
        for off, v in recs:
            n = value_number(v, b"out-")
            if n is None or not 0 <= n < RECORDS:
                bad.append((q, off, v))
                continue
            count[n] = count.get(n, 0) + 1
            if n % PARTITIONS != q:
                misplaced.append((q, off, n))
            if n <= prev:
                disorder.append((q, off, prev, n))
            prev = n
    lost = [n for n in range(RECORDS) if n not in count]
    dups = [n for n, k in count.items() if k > 1]
    state["lost"] = len(lost)
    state["duplicated"] = sum(count[n] - 1 for n in dups)
    log("read_committed output: %d records (per partition %s, high watermarks %s): %d lost, %d duplicated "
        "(%d values more than once), %d foreign, %d in the wrong partition, %d out of input order" % (
            state["output_read"], {q: len(r) for q, r in got.items()}, highs, len(lost), state["duplicated"],
            len(dups), len(bad), len(misplaced), len(disorder)))
    try:
        final_offsets = committed_offsets()
    except KafkaException as e:
        raise Failure("list_consumer_group_offsets after the run: %s" % e)
    log("group committed offsets %s, input end offsets %s" % (final_offsets, ends))

    got_ru, _ = read_all("read_uncommitted", 60)
    n_ru = sum(len(r) for r in got_ru.values())
    counts, exits = app.event_counts()
    log("transactions reported by the application instances: %d committed (%d records), %d aborted (%d records), "
        "%d retried calls, %d non-zero exits; read_uncommitted output %d records, %d of them in aborted "
        "transactions" % (counts["C"], counts["Crecords"], counts["A"], counts["Arecords"], counts["R"],
                          counts["X"], n_ru, n_ru - state["output_read"]))
    for line in exits:
        log("  application exit: %s" % line)

    problems = []
    if lost:
        problems.append("%d input records lost, e.g. %s" % (len(lost), lost[:10]))
    if dups:
        problems.append("%d input records duplicated, e.g. %s" % (
            len(dups), ["%d x%d" % (n, count[n]) for n in sorted(dups)[:10]]))
    if bad:
        problems.append("%d foreign records in the output, e.g. %s" % (len(bad), bad[:5]))
    if misplaced:
        problems.append("%d records in the wrong output partition (partition, offset, n), e.g. %s" % (
            len(misplaced), misplaced[:5]))
    if disorder:
        problems.append("%d records out of input order (partition, offset, previous n, n), e.g. %s" % (
            len(disorder), disorder[:5]))
    if final_offsets != ends:
        problems.append("group committed offsets %s != input end offsets %s" % (final_offsets, ends))
    if state["broker_kills"] != 3 or state["app_kills"] != 2:
        problems.append("only %d broker kills and %d app kills" % (state["broker_kills"], state["app_kills"]))
    if problems:
        raise Failure("; ".join(problems))
    return "%d records exactly once through %d broker and %d application kill -9s (%d transactions committed, " \
           "%d aborted as reported by the app); processing %.1fs" % (
               RECORDS, state["broker_kills"], state["app_kills"], counts["C"], counts["A"], processing)


def run():
    state = {"t0": time.monotonic(), "broker": None, "app": None, "broker_kills": 0, "app_kills": 0,
             "app_restarts": 0, "output_read": "?", "lost": "?", "duplicated": "?"}
    if not os.environ.get("STROM_BIN"):
        compat.unsupported("needs its own broker (STROM_BIN), not available with --bootstrap")
    verdict, ok = None, False
    try:
        verdict = main(state)
        ok = True
    except Failure as e:
        verdict = str(e)
    except Exception as e:  # noqa: BLE001 - an unexpected error is a failure with its traceback
        traceback.print_exc()
        verdict = "unexpected error: %r" % (e,)
    app, own = state["app"], state["broker"]
    if app is not None:
        if not ok and app.proc is not None and app.proc.poll() is None:
            app.proc.send_signal(signal.SIGUSR1)  # its Python stack into app.log
            time.sleep(0.5)
        app.kill()
    if own is not None:
        if own.proc is not None and own.proc.poll() is not None:
            log("broker had exited with status %s" % own.proc.returncode)
            if ok:
                ok, verdict = False, "broker exited during the run with status %s" % own.proc.returncode
            own.proc = None
        own.stop()
        if ok and not os.environ.get("COMPAT_EOS_KEEP"):
            own.close()
        else:
            own.log.close()
            log("---- last 40 lines of the broker log %s/strom.log ----" % own.dir)
            for line in tail(os.path.join(own.dir, "strom.log"), 40):
                print("  " + line)
            if app is not None:
                log("---- last 40 lines of the application log %s ----" % app.logpath)
                for line in tail(app.logpath, 40):
                    print("  " + line)
            log("kept %s (strom.log, data/, app.log, app.events)" % own.dir)
    elapsed = time.monotonic() - state["t0"]
    print("SUMMARY eos input %d; output-read %s; lost %s; duplicated %s; broker-kills %d; app-kills %d; elapsed %.1f s"
          % (RECORDS, state["output_read"], state["lost"], state["duplicated"], state["broker_kills"],
             state["app_kills"], elapsed), flush=True)
    if ok:
        compat.passed(verdict)
    compat.fail(verdict)


run()
