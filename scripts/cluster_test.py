#!/usr/bin/env python3
"""Real clients against a three-node Strom cluster (issue 13).

Starts `strom dev-cluster 3` (the documented development command) in a temporary
directory, waits until the three brokers registered and the quorum has a leader, then:

1. runs compat scenarios with confluent-kafka, kafka-python, kafkajs and kcat through
   `compat-tests/run --bootstrap`, bootstrapping from broker 2: multi-partition topics
   spread over the three brokers, each partition produced to and fetched from its
   leader, consumer groups whose coordinators sit on whichever broker leads their
   __consumer_offsets partition (rebalancing, committing, reading commits back);
   (`group-resume` restarts its broker, which needs a broker of its own; the Rust
   test `tests/cluster.rs` covers commits surviving a restart of the whole cluster);
2. moves a partition's replicas with kafka-python's admin client while a kafka-python
   idempotent acks=all producer writes to it (AlterPartitionReassignments and
   ListPartitionReassignments, KIP-455): replication factor 1 -> 3, then off the broker
   that leads it (3 -> 2, leadership moves); every acknowledged record is then read
   back exactly once, and a cancel with nothing in progress is refused;
3. share-group state following its partition (issue 19): a confluent-kafka
   ShareConsumer accepts half of a partition's records and releases the rest, the
   partition's replicas are moved off its leader (leadership moves), and a new
   ShareConsumer of the group gets exactly the released half: accepted records are
   never delivered again by the new leader;
4. measures metadata propagation: 100 topics created through broker 1, each timed until
   broker 3's Metadata lists it (p50/p99 printed);
5. stops the cluster with SIGTERM (controlled shutdown of every node) and checks it exits.

Usage: compat-tests/.venv/bin/python scripts/cluster_test.py [--strom-bin target/debug/strom]
Exit status 0 when everything passed.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Multi-partition and group scenarios: what a cluster changes for a client.
SCENARIOS = "produce-consume-explicit,group-rebalance,standalone-commit,admin,idempotent,metadata,transactions,share-group"
CLIENTS = "confluent_kafka,kafka_python,kafkajs,kcat"


def say(msg):
    print(msg, flush=True)


def free_base():
    """A base port with BASE..BASE+22 free (three nodes use BASE+10i+{0,1,2})."""
    for base in range(21092, 30000, 100):
        ok = True
        for i in range(3):
            for off in range(3):
                s = socket.socket()
                try:
                    s.bind(("127.0.0.1", base + 10 * i + off))
                except OSError:
                    ok = False
                finally:
                    s.close()
        if ok:
            return base
    raise SystemExit("no free port range for the cluster")


def info(strom, bootstrap):
    out = subprocess.run([strom, "cluster", "info", "-o", "json", "-b", bootstrap, "--timeout-ms", "3000"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)


def wait_ready(strom, bootstraps, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("dev-cluster exited with %s before it was ready" % proc.returncode)
        views = [info(strom, b) for b in bootstraps]
        if all(v and v.get("quorum") and v["quorum"]["leader_id"] > 0
               and sorted(b["node_id"] for b in v["brokers"] if not b["fenced"]) == [1, 2, 3]
               and v["partitions"] > 0 and v["leaderless_partitions"] == 0 for v in views):
            return views[0]
        time.sleep(0.2)
    raise SystemExit("the cluster was not ready within %ds" % timeout)


def propagation(b1, b3, n=100):
    from confluent_kafka.admin import AdminClient, NewTopic
    create = AdminClient({"bootstrap.servers": b1})
    watch = AdminClient({"bootstrap.servers": b3})
    stamp = int(time.time())
    delays = []
    for i in range(n):
        name = "propagation-%d-%d" % (stamp, i)
        t0 = time.perf_counter()
        create.create_topics([NewTopic(name, 1, 1)], operation_timeout=10)[name].result()
        created = time.perf_counter()
        deadline = created + 10
        while True:
            md = watch.list_topics(topic=name, timeout=5)
            t = md.topics.get(name)
            if t is not None and t.error is None and len(t.partitions) == 1:
                break
            if time.perf_counter() > deadline:
                raise SystemExit("topic %s not visible at broker 3 within 10 s" % name)
        seen = time.perf_counter()
        # From the CreateTopics answer (committed, and applied on broker 1) to broker 3
        # listing it; the create itself is the first number.
        delays.append(((created - t0) * 1000, (seen - created) * 1000))
    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
    create_ms = [c for c, _ in delays]
    prop_ms = [p for _, p in delays]
    say("metadata propagation over %d topics: CreateTopics p50 %.1f ms p99 %.1f ms; "
        "visible at another broker after the answer p50 %.1f ms p99 %.1f ms" %
        (n, pct(create_ms, 50), pct(create_ms, 99), pct(prop_ms, 50), pct(prop_ms, 99)))


def reassignment(bootstraps, timeout=60):
    """Replica moves under a running producer (issue 14); raises on failure."""
    import threading
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.errors import NoReassignmentInProgressError

    admin = KafkaAdminClient(bootstrap_servers=bootstraps)
    name = "reassign-%d" % int(time.time())
    tp = TopicPartition(name, 0)
    admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1,
                                "configs": {"min.insync.replicas": "1"}}})

    def partition():
        for t in admin.describe_topics([name]):
            for p in t["partitions"]:
                return p
        return None

    deadline = time.time() + timeout
    while (partition() or {}).get("leader_id", -1) < 0:
        if time.time() > deadline:
            raise SystemExit("FAIL: %s got no leader" % name)
        time.sleep(0.1)
    first = partition()["leader_id"]
    others = [b for b in (1, 2, 3) if b != first]

    acked, failed = [], []
    stop = threading.Event()
    # One request in flight: kafka-python fails (rather than retries, as the Java client
    # does) a batch answered OUT_OF_ORDER_SEQUENCE because an earlier one is being
    # resent to the new leader, so with more in flight a leader move can fail sends.
    producer = KafkaProducer(bootstrap_servers=bootstraps, acks="all", enable_idempotence=True,
                             linger_ms=2, max_in_flight_requests_per_connection=1)

    def produce():
        seq = 0
        while not stop.is_set():
            value = b"r-%d" % seq
            seq += 1
            f = producer.send(name, value=value, partition=0)
            f.add_callback(lambda md, v=value: acked.append((v, md.offset)))
            f.add_errback(lambda e, v=value: failed.append((v, repr(e))))
            time.sleep(0.002)
        producer.flush(timeout=60)

    writer = threading.Thread(target=produce)
    writer.start()
    try:
        def move(target, label):
            t0 = time.time()
            errors = admin.alter_partition_reassignments({tp: target})
            if errors.get(tp) is not None:
                raise SystemExit("FAIL: reassigning %s to %s: %s" % (name, target, errors[tp]))
            seen_ongoing = False
            while True:
                ongoing = admin.list_partition_reassignments([tp])
                seen_ongoing = seen_ongoing or tp in ongoing
                p = partition()
                if (not ongoing and p and sorted(p["replica_nodes"]) == sorted(target)
                        and sorted(p["isr_nodes"]) == sorted(target) and p["leader_id"] in target):
                    break
                if time.time() - t0 > timeout:
                    raise SystemExit("FAIL: %s: reassignment to %s not done in %d s (ongoing %s, partition %s)"
                                     % (name, target, timeout, ongoing, p))
                time.sleep(0.1)
            say("reassignment %s: %s -> replicas %s, leader %d, in %.2f s (%s listed while in progress)"
                % (label, name, p["replica_nodes"], p["leader_id"], time.time() - t0,
                   "was" if seen_ongoing else "not"))
            return p

        time.sleep(0.5)
        move([first] + others, "RF 1 -> 3")
        time.sleep(0.5)
        p = move(others, "RF 3 -> 2 off the leader")
        if p["leader_id"] == first:
            raise SystemExit("FAIL: broker %d still leads after leaving the replicas" % first)
        errors = admin.alter_partition_reassignments({tp: None})
        if errors.get(tp) is not NoReassignmentInProgressError:
            raise SystemExit("FAIL: cancelling no reassignment answered %s" % errors.get(tp))
        time.sleep(0.5)
    finally:
        stop.set()
        writer.join(timeout=90)
        producer.close(timeout=10)
    if failed:
        raise SystemExit("FAIL: %d sends failed during the moves, first %s" % (len(failed), failed[0]))
    consumer = KafkaConsumer(bootstrap_servers=bootstraps, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    consumer.assign([tp])
    end = consumer.end_offsets([tp])[tp]
    read = {}
    deadline = time.time() + timeout
    while consumer.position(tp) < end and time.time() < deadline:
        for recs in consumer.poll(timeout_ms=500).values():
            for r in recs:
                read.setdefault(r.value, []).append(r.offset)
    consumer.close()
    lost = [v for v, _ in acked if v not in read]
    dup = [v for v, offs in read.items() if len(offs) > 1]
    moved = [v for v, off in acked if v in read and read[v] != [off]]
    say("reassignment under load: %d records acknowledged, %d read back; lost %d, duplicated %d, "
        "at another offset %d" % (len(acked), len(read), len(lost), len(dup), len(moved)))
    if lost or dup or moved or not acked:
        raise SystemExit("FAIL: records lost/duplicated/moved across the reassignment")
    admin.close()


def share_failover(bootstraps, timeout=60):
    """Share-partition state moves with its partition's leadership; raises on failure."""
    from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    from kafka import KafkaAdminClient, TopicPartition

    n = 200
    name = "share-failover-%d" % int(time.time())
    group = name + "-workers"
    admin = KafkaAdminClient(bootstrap_servers=bootstraps)
    admin.create_topics({name: {"num_partitions": 1, "replication_factor": 3}})
    tp = TopicPartition(name, 0)

    def partition():
        for t in admin.describe_topics([name]):
            for p in t["partitions"]:
                return p
        return None

    deadline = time.time() + timeout
    while len((partition() or {}).get("isr_nodes", [])) < 3 or partition()["leader_id"] < 0:
        if time.time() > deadline:
            raise SystemExit("FAIL: %s has no leader with three in-sync replicas" % name)
        time.sleep(0.1)
    leader = partition()["leader_id"]
    ck_admin = AdminClient({"bootstrap.servers": ",".join(bootstraps)})
    res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
    ck_admin.incremental_alter_configs([res])[res].result(timeout=30)
    producer = Producer({"bootstrap.servers": ",".join(bootstraps), "acks": "all"})
    for i in range(n):
        producer.produce(name, value=b"job-%d" % i, partition=0)
    if producer.flush(30) != 0:
        raise SystemExit("FAIL: %s: records not acknowledged" % name)

    def consumer():
        c = ShareConsumer({"bootstrap.servers": ",".join(bootstraps), "group.id": group,
                           "share.acknowledgement.mode": "explicit"})
        c.subscribe([name])
        return c

    # Accept the first half, release the second; every acknowledgement is committed on
    # the share coordinator before commit_sync returns.
    c = consumer()
    seen = set()
    deadline = time.time() + timeout
    while len(seen) < n and time.time() < deadline:
        got = [m for m in c.poll(timeout=0.5) if m.error() is None]
        for m in got:
            seen.add(m.offset())
            c.acknowledge(m, AcknowledgeType.ACCEPT if m.offset() < n // 2 else AcknowledgeType.RELEASE)
        if got:
            errors = {k: e for k, e in (c.commit_sync(30) or {}).items() if e is not None}
            if errors:
                raise SystemExit("FAIL: %s: commit_sync reported %s" % (name, errors))
    c.close()
    if len(seen) < n:
        raise SystemExit("FAIL: %s: the first share consumer got %d of %d records" % (name, len(seen), n))
    # Move the partition off its leader: a new leader opens the share-partition from the
    # state its share coordinator holds.
    others = [b for b in (1, 2, 3) if b != leader]
    errors = admin.alter_partition_reassignments({tp: others})
    if errors.get(tp) is not None:
        raise SystemExit("FAIL: reassigning %s: %s" % (name, errors[tp]))
    deadline = time.time() + timeout
    while True:
        p = partition()
        if p and sorted(p["replica_nodes"]) == others and p["leader_id"] in others:
            break
        if time.time() > deadline:
            raise SystemExit("FAIL: %s: leadership did not move off %d: %s" % (name, leader, p))
        time.sleep(0.1)
    c = consumer()
    again = {}
    deadline = time.time() + timeout
    while len(again) < n // 2 and time.time() < deadline:
        for m in c.poll(timeout=0.5):
            if m.error() is None:
                again[m.offset()] = again.get(m.offset(), 0) + 1
                c.acknowledge(m, AcknowledgeType.ACCEPT)
        c.commit_sync(30)
    c.close()
    accepted_again = sorted(o for o in again if o < n // 2)
    missing = sorted(set(range(n // 2, n)) - set(again))
    say("share failover: leader %d -> %d; %d accepted before, %d released; after the move %d delivered, "
        "%d of them accepted before, %d released ones missing" %
        (leader, p["leader_id"], n // 2, n // 2, len(again), len(accepted_again), len(missing)))
    if accepted_again or missing:
        raise SystemExit("FAIL: share-partition state did not follow the leader (accepted again %s, missing %s)"
                         % (accepted_again[:5], missing[:5]))
    admin.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strom-bin", default=os.path.join(ROOT, "target", "debug", "strom"))
    ap.add_argument("--clients", default=CLIENTS)
    ap.add_argument("--scenarios", default=SCENARIOS, help="compat scenarios ('' for none)")
    ap.add_argument("--propagation-topics", type=int, default=100)
    args = ap.parse_args()
    strom = os.path.abspath(args.strom_bin)
    base = free_base()
    tmp = tempfile.mkdtemp(prefix="strom-cluster-")
    log = open(os.path.join(tmp, "dev-cluster.log"), "w")
    started = time.time()
    proc = subprocess.Popen([strom, "dev-cluster", "3", "--dir", tmp, "--base-port", str(base),
                             "--override", "broker.session.timeout.ms=6000",
                             "--override", "broker.heartbeat.interval.ms=500",
                             "--override", "min.insync.replicas=2"],
                            stdout=log, stderr=subprocess.STDOUT)
    bootstraps = ["127.0.0.1:%d" % (base + 10 * i) for i in range(3)]
    failed = False
    try:
        ready = wait_ready(strom, bootstraps, proc)
        say("cluster of 3 ready in %.2f s: quorum leader %d, brokers %s" %
            (time.time() - started, ready["quorum"]["leader_id"],
             ", ".join("%d leads %d" % (b["node_id"], b["leader_partitions"]) for b in ready["brokers"])))
        # Every topic the scenarios create has three replicas, two of them needed for
        # acks=all: the clients run against replicated partitions.
        rc = subprocess.run(["python3", os.path.join(ROOT, "compat-tests", "run"),
                             "--bootstrap", bootstraps[1], "--clients", args.clients,
                             "--scenarios", args.scenarios],
                            env=dict(os.environ, STROM_COMPAT_REPLICATION_FACTOR="3")).returncode \
            if args.scenarios else 0
        if rc != 0:
            say("FAIL: compat scenarios against the cluster (exit %d)" % rc)
            failed = True
        after = info(strom, bootstraps[0])
        leads = {b["node_id"]: b["leader_partitions"] for b in after["brokers"]}
        if args.scenarios and min(leads.values()) == 0:
            say("FAIL: a broker leads no partition: %s" % leads)
            failed = True
        else:
            say("partition leadership after the scenarios: %s" % leads)
        reassignment(bootstraps)
        share_failover(bootstraps)
        if args.propagation_topics:
            propagation(bootstraps[0], bootstraps[2], args.propagation_topics)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            say("FAIL: dev-cluster did not stop within 30 s of SIGTERM")
            failed = True
        log.close()
        say("dev-cluster stopped (exit %s); logs in %s" % (code, tmp))
    if failed:
        sys.exit(1)
    say("cluster test OK")


if __name__ == "__main__":
    main()
