#!/usr/bin/env python3
"""Share-group figures (issue 19): consume throughput of 1 and 4 share consumers as a
fraction of a classic consumer group's on the same topic, in one run, and the redelivery
latency after a lock timeout. Clients: confluent-kafka (librdkafka) from the compat venv.

    cargo build --release --bin strom
    compat-tests/.venv/bin/python scripts/share_figures.py [--records 200000] [--strom-bin target/release/strom]

Starts its own broker on a free loopback port with a fresh data directory (or uses
--bootstrap). Every run reads the same 4-partition topic from the start, each in its
own group: a classic group with one consumer (the baseline), a share group with one
consumer and one with four (four processes; implicit acknowledgement). Throughput is
records over the time from the first record received to the last (joining is reported
apart: a classic group waits out `group.initial.rebalance.delay.ms`). The
redelivery latency is how long after the lock deadline a parked consumer gets the
records another member held without acknowledging (group lock 1000 ms)."""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDLE_S = 2.0  # a consumer that gets nothing for this long is done

CHILD = r"""
import sys, time
from confluent_kafka import ShareConsumer
c = ShareConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2]})
c.subscribe([sys.argv[3]])
n, first, last, idle = 0, None, None, time.monotonic()
seen, size = set(), 0
start = float(sys.argv[4])
while time.monotonic() - idle < float(sys.argv[5]) or n == 0 and time.monotonic() - start < 60:
    got = [m for m in c.poll(timeout=0.2) if m.error() is None]
    if got:
        now = time.monotonic()
        first = first or now
        last = now
        idle = now
        n += len(got)
        seen.update((m.partition(), m.offset()) for m in got)
        size += sum(len(m.value()) for m in got)
c.poll(timeout=0.2)  # accepts the last records (implicit mode)
c.close()
print(n, first or 0.0, last or 0.0, len(seen), size, flush=True)
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def set_group(admin, group, **configs):
    entries = [ConfigEntry(k.replace("_", "."), v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()]
    res = ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)
    admin.incremental_alter_configs([res])[res].result(timeout=30)


def classic(bootstrap, topic, n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "classic-%d" % time.time_ns(),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    start = time.monotonic()
    c.subscribe([topic])
    got, first, last = 0, None, start
    while got < n and time.monotonic() - start < 120:
        for m in c.consume(num_messages=10000, timeout=0.5):
            if m.error() is None:
                got += 1
                last = time.monotonic()
                first = first or last
    c.close()
    return got, last - (first or start), (first or start) - start


def share(bootstrap, admin, topic, n, consumers):
    group = "share%d-%d" % (consumers, time.time_ns())
    set_group(admin, group, share_auto_offset_reset="earliest")
    start = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, bootstrap, group, topic, str(start), str(IDLE_S)],
                              stdout=subprocess.PIPE, text=True) for _ in range(consumers)]
    counts, firsts, lasts = [], [], []
    for p in procs:
        out, _ = p.communicate(timeout=180)
        count, first, last, distinct, size = out.split()
        if int(distinct) != int(count) or int(size) != 100 * int(count):
            raise SystemExit("a share consumer got %s records, %s distinct, %s value bytes" % (count, distinct, size))
        counts.append(int(count))
        if int(count):
            firsts.append(float(first))
            lasts.append(float(last))
    return sum(counts), max(lasts) - min(firsts), counts, min(firsts) - start


def redelivery(bootstrap, admin, topic, samples):
    """Two consumers of one group poll for one record; whichever gets it holds it without
    acknowledging, and the other, parked in ShareFetch, gets it when the 1000-ms lock
    runs out. Returns the delays past the deadline, in ms."""
    ptopic = topic + "-redelivery"
    admin.create_topics([NewTopic(ptopic, 1, 1)])[ptopic].result(timeout=30)
    group = "redeliver-%d" % time.time_ns()
    set_group(admin, group, share_auto_offset_reset="earliest", share_record_lock_duration_ms="1000")
    p = Producer({"bootstrap.servers": bootstrap})
    cs = [ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "share.acknowledgement.mode": "explicit"})
          for _ in range(2)]
    for c in cs:
        c.subscribe([ptopic])
    delays = []
    for i in range(samples):
        p.produce(ptopic, b"r%d" % i)
        p.flush()
        holder = taken = None
        deadline = time.monotonic() + 30
        while holder is None and time.monotonic() < deadline:
            for k, c in enumerate(cs):
                got = [m for m in c.poll(timeout=0.05) if m.error() is None]
                if got:
                    holder, taken, held = k, time.monotonic(), got
                    break
        if holder is None:
            raise SystemExit("nobody got the record")
        waiter = cs[1 - holder]
        back = None
        while back is None and time.monotonic() < deadline + 5:
            got = [m for m in waiter.poll(timeout=0.05) if m.error() is None]
            if got:
                back = time.monotonic()
                for m in got:
                    waiter.acknowledge(m)
                waiter.commit_sync(30)
        if back is None:
            raise SystemExit("the held record was not redelivered")
        delays.append((back - taken - 1.0) * 1000)
        # The holder's acknowledgement comes too late (refused); explicit mode needs it
        # before the holder may poll again.
        for m in held:
            cs[holder].acknowledge(m)
        cs[holder].commit_sync(30)
    for c in cs:
        c.close()
    return delays


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--strom-bin", default=os.path.join(ROOT, "target", "release", "strom"))
    ap.add_argument("--bootstrap")
    ap.add_argument("--samples", type=int, default=5)
    args = ap.parse_args()
    broker = None
    if args.bootstrap:
        bootstrap = args.bootstrap
    else:
        port = free_port()
        data = tempfile.mkdtemp(prefix="strom-share-figures-")
        broker = subprocess.Popen([args.strom_bin, "serve", "--listeners", "PLAINTEXT://127.0.0.1:%d" % port,
                                   "--log-dirs", data, "--override", "strom.http.listener=127.0.0.1:0",
                                   "--override", "strom.schema.registry.listener="],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bootstrap = "127.0.0.1:%d" % port
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = "share-figures-%d" % time.time_ns()
        admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(timeout=30)
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 1000})
        value = b"x" * 100
        for i in range(args.records):
            while True:
                try:
                    p.produce(topic, value, partition=i % 4)
                    break
                except BufferError:
                    p.poll(0.1)
        p.flush()
        n = args.records
        got, secs, join = classic(bootstrap, topic, n)
        base = got / secs
        print("classic group, 1 consumer:  %d records in %.2f s = %.0f rec/s (baseline; first record %.2f s after subscribing)"
              % (got, secs, base, join))
        for k in (1, 4):
            got, secs, counts, join = share(bootstrap, admin, topic, n, k)
            rate = got / secs
            print("share group, %d consumer%s: %d records in %.2f s = %.0f rec/s = %.2f of the classic group "
                  "(first record %.2f s after start%s)"
                  % (k, "s" if k > 1 else " ", got, secs, rate, rate / base, join,
                     "; per consumer %s" % counts if k > 1 else ""))
            if got != n:
                print("  WARNING: %d records received, %d produced" % (got, n))
        delays = redelivery(bootstrap, admin, topic, args.samples)
        print("redelivery after a 1000-ms lock timeout: %d samples, p50 %.0f ms, max %.0f ms past the deadline"
              % (len(delays), statistics.median(delays), max(delays)))
    finally:
        if broker:
            broker.terminate()
            broker.wait(timeout=30)


if __name__ == "__main__":
    main()
