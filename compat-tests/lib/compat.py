"""Shared helpers for the Strom compatibility scenarios (stdlib only).

Every scenario script (whatever the client) gets from compat-tests/run:
  STROM_BOOTSTRAP   host:port of the broker under test
  COMPAT_TOPIC      a topic-name prefix unique to this run/client/scenario
  PYTHONPATH        includes this directory

Exit codes of a scenario: 0 pass, 1 fail, 3 unsupported by client.
"""

import os
import random
import sys
import time

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_UNSUPPORTED = 3

N_MESSAGES = int(os.environ.get("COMPAT_MESSAGES", "10000"))


def replication_factor():
    """Replicas of the topics scenarios create: 1, or STROM_COMPAT_REPLICATION_FACTOR
    (scripts/cluster_test.py runs the scenarios against three brokers with 3)."""
    return int(os.environ.get("STROM_COMPAT_REPLICATION_FACTOR", "1"))


def bootstrap():
    b = os.environ.get("STROM_BOOTSTRAP")
    if not b:
        fail("STROM_BOOTSTRAP is not set (run scenarios through compat-tests/run)")
    return b


def topic(suffix=""):
    base = os.environ.get("COMPAT_TOPIC") or "compat-adhoc-%d-%d" % (os.getpid(), int(time.time()))
    return base + suffix


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_FAIL)


def unsupported(msg):
    print("UNSUPPORTED: " + msg, flush=True)
    os._exit(EXIT_UNSUPPORTED)


def passed(msg="ok"):
    print("PASS: " + msg, flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: never hang in client library shutdown (librdkafka threads,
    # kafka-python background IO) after the verdict is known.
    os._exit(EXIT_PASS)


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end


def short(b, limit=64):
    """Readable repr of bytes/None, truncated, with the length."""
    if b is None:
        return "None"
    if isinstance(b, (bytes, bytearray)):
        b = bytes(b)
        head = b[:limit]
        more = "" if len(b) <= limit else "...(+%d bytes)" % (len(b) - limit)
        return "%r%s [len=%d]" % (head, more, len(b))
    r = repr(b)
    return r if len(r) <= 200 else r[:200] + "..."


def first_diff(expected, got, what="message"):
    """Compare two sequences; return None if equal, else a description of
    the first difference (index, expected vs got) plus length info."""
    n = min(len(expected), len(got))
    for i in range(n):
        if expected[i] != got[i]:
            e, g = expected[i], got[i]
            detail = ""
            if isinstance(e, tuple) and isinstance(g, tuple) and len(e) == len(g):
                parts = []
                for j, (ee, gg) in enumerate(zip(e, g)):
                    if ee != gg:
                        parts.append("field %d: expected %s, got %s" % (j, short(ee), short(gg)))
                detail = "; ".join(parts)
            else:
                detail = "expected %s, got %s" % (short(e), short(g))
            return "first differing %s at index %d of %d/%d: %s" % (what, i, len(expected), len(got), detail)
    if len(expected) != len(got):
        if len(got) < len(expected):
            return "got %d %ss, expected %d; first missing at index %d: %s" % (
                len(got), what, len(expected), n, short(expected[n]))
        return "got %d %ss, expected %d; first extra at index %d: %s" % (
            len(got), what, len(expected), n, short(got[n]))
    return None


# ---------------------------------------------------------------------------
# Data sets


def auto_dataset(n=None, seed=20240601, avoid=()):
    """The produce-consume-auto data set: list of (key, value) bytes pairs.

    Distinct keys b"key-000000"...; values are "binary-ish":
      index 0: all 256 byte values 0x00..0xff
      index 1: empty value (b"", not null)
      index 2, n//2, n-1 and a few more: ~10 KB random values
      every 10th: value of only 0x00 / 0xff runs
      others: random bytes of length 1..300 prefixed with the index
    `avoid`: byte strings that must not occur inside any value (e.g. kcat's
    input delimiter); random values containing one are regenerated.
    """
    n = N_MESSAGES if n is None else n
    rnd = random.Random(seed)
    big = {2, 3, n // 2, n - 1, n // 3}
    out = []
    for i in range(n):
        key = b"key-%06d" % i
        while True:
            if i == 0:
                val = bytes(range(256))
            elif i == 1:
                val = b""
            elif i in big:
                val = b"big-%06d:" % i + rnd.randbytes(10 * 1024)
            elif i % 10 == 0:
                val = (b"\x00" * rnd.randint(1, 50)) + (b"\xff" * rnd.randint(1, 50))
            else:
                val = b"%06d:" % i + rnd.randbytes(rnd.randint(1, 300))
            if not any(a in val for a in avoid):
                break
            if i in (0, 1):
                raise ValueError("fixed value %d contains a forbidden delimiter" % i)
        out.append((key, val))
    return out


def keyed_dataset(n=None, nkeys=1000, seed=4242):
    """produce-consume-explicit data set: list of (key, value); keys repeat
    (nkeys distinct keys, so they spread over partitions and each key sends
    several messages); each value is unique and starts with its index."""
    n = N_MESSAGES if n is None else n
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        key = b"k%04d" % (i % nkeys)
        val = b"msg-%06d|" % i + rnd.randbytes(rnd.randint(0, 64))
        out.append((key, val))
    return out


def headers_dataset(n=300, allow_null_header_value=True, base_ts=1600000000000):
    """headers-timestamps data set: list of dicts {key, value, headers, ts}.

    headers is a list of (str, bytes|None) pairs, order-significant, with
    duplicate names, empty values, binary values, non-ASCII names, and
    records without headers. Timestamps are explicit CreateTime values,
    deliberately NOT monotonic within a batch.
    """
    rnd = random.Random(777)
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            headers = []
        elif kind == 1:
            headers = [("trace-id", b"%032x" % rnd.getrandbits(128))]
        elif kind == 2:
            headers = [("dup", b"first"), ("dup", b"second"), ("other", b"x"), ("dup", b"third")]
        elif kind == 3:
            headers = [("empty", b""), ("bin", bytes(range(256)))]
        elif kind == 4:
            headers = [("n\u00e4me-\u00fcnicode", "v\u00e4lue".encode("utf-8")), ("i", b"%d" % i)]
        else:
            headers = [("h%d" % j, bytes([j]) * j) for j in range(1, 9)]
            if allow_null_header_value:
                headers.append(("null-value", None))
        ts = base_ts + ((i * 7919) % n) * 1000 + i  # non-monotonic, all distinct
        out.append({"key": b"hk-%04d" % i, "value": b"hv-%04d" % i, "headers": headers, "ts": ts})
    return out


def expected_by_partition(data, reports, npart):
    """From produced (key, value) pairs and their delivery reports (partition, offset):
    {partition: [(offset, key, value)]}, checking each key stayed on one partition and
    the keys spread over every partition."""
    expected = {q: [] for q in range(npart)}
    key_part = {}
    for (k, v), (part, off) in zip(data, reports):
        if part not in expected:
            fail("message delivered to partition %d, topic has %d" % (part, npart))
        if key_part.setdefault(k, part) != part:
            fail("key %r delivered to partitions %d and %d" % (k, key_part[k], part))
        expected[part].append((off, k, v))
    empty = [q for q in expected if not expected[q]]
    if empty:
        fail("keys did not spread: partitions %s got no messages" % empty)
    return expected


def check_partitions(expected, consumed, watermarks):
    """`consumed` is {partition: [(offset, key, value)]} as read back: it must equal what
    was produced, offsets contiguous from 0, and (beginning, end) offsets must match."""
    for q, want in expected.items():
        d = first_diff(want, consumed.get(q, []), "message (offset, key, value) of partition %d" % q)
        if d:
            fail(d)
        exp_offsets = list(range(len(want)))
        if [e[0] for e in want] != exp_offsets:
            fail("partition %d offsets not contiguous from 0: %s" % (q, first_diff(exp_offsets, [e[0] for e in want], "offset")))
        if watermarks.get(q) != (0, len(want)):
            fail("partition %d (beginning, end) offsets: expected (0, %d), got %s" % (q, len(want), watermarks.get(q)))
    extra = set(consumed) - set(expected)
    if extra:
        fail("records from unexpected partitions %s" % sorted(extra))


# ---------------------------------------------------------------------------
# "Scenarios every client runs" (README): large-messages, compression,
# seek-timestamp, idempotent. Generators and checks shared by the Python clients
# and kcat (kcat/kcat_data.py); kafkajs/compat.js builds the same shapes.

LARGE_COUNT = 8
LARGE_VALUE_BYTES = 1048576
# Topic max.message.bytes and the producers' request limit (4 MiB).
LARGE_MAX_BYTES = 4194304


def large_dataset(avoid=(), seed=1048576):
    """large-messages: [(b"large-<i>", 1 MiB of seeded random bytes)] for i in 0..7.
    Values are incompressible and pairwise different; `avoid`: byte strings that must
    not occur inside a value (kcat's input delimiter): such a value is redrawn."""
    rnd = random.Random(seed)
    out = []
    for i in range(LARGE_COUNT):
        while True:
            val = rnd.randbytes(LARGE_VALUE_BYTES)
            if not any(a in val for a in avoid):
                break
        out.append((b"large-%d" % i, val))
    assert len({v for _, v in out}) == LARGE_COUNT
    return out


def bytes_diff(e, g):
    """Where two byte strings first differ, for a failure message."""
    if e is None or g is None:
        return "expected %s, got %s" % (short(e), short(g))
    n = min(len(e), len(g))
    at = next((j for j in range(n) if e[j] != g[j]), n)
    return "lengths %d/%d (expected/got), first differing byte at %d: expected %s, got %s" % (
        len(e), len(g), at, short(e[at:at + 16]), short(g[at:at + 16]))


def check_large(data, got):
    """`got`: [(offset, key, value)] read from offset 0: must be data's records at
    offsets 0..7, values byte-for-byte (the first difference is located exactly)."""
    for i, (k, v) in enumerate(data):
        if i >= len(got):
            fail("got %d large records, expected %d; first missing: index %d (key %r)" % (len(got), len(data), i, k))
        off, gk, gv = got[i]
        if off != i:
            fail("large record index %d: offset expected %d, got %d" % (i, i, off))
        if gk != k:
            fail("large record index %d (offset %d): key expected %s, got %s" % (i, off, short(k), short(gk)))
        if gv != v:
            fail("large record index %d (offset %d, key %r): value differs: %s" % (i, off, k, bytes_diff(v, gv)))
    if len(got) > len(data):
        fail("got %d large records, expected %d; first extra at offset %d: key %s value %s" % (
            len(got), len(data), got[len(data)][0], short(got[len(data)][1]), short(got[len(data)][2])))


CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
COMPRESSION_COUNT = 1000


def compression_dataset(n=COMPRESSION_COUNT):
    """compression: [(b"key-%06d", value)]: each value repeats its index
    (b"000042," 20..99 times, ~140..700 bytes), so batches compress well."""
    return [(b"key-%06d" % i, (b"%06d," % i) * (20 + i % 80)) for i in range(n)]


def check_log(data, got, what="record (offset, key, value)"):
    """`got`: [(offset, key, value)] of a one-partition topic read from offset 0:
    must be exactly data's (key, value) pairs at offsets 0..n-1. Returns None if
    equal, else the first difference."""
    return first_diff([(i, k, v) for i, (k, v) in enumerate(data)], list(got), what)


SEEK_COUNT = 100
SEEK_INDEX = 42


def seek_t0(now=None):
    """seek-timestamp T0: now − 1 h, rounded down to the second, in ms."""
    return (int(time.time() if now is None else now) - 3600) * 1000


def timestamp_dataset(t0, n=SEEK_COUNT):
    """seek-timestamp: [(key, value, CreateTime)] with timestamps t0 + 1000·i."""
    return [(b"ts-%03d" % i, b"tv-%03d" % i, t0 + 1000 * i) for i in range(n)]


def seek_queries(t0, n=SEEK_COUNT, index=SEEK_INDEX):
    """(name, timestamp, expected offset or None) for the offsets-for-times lookups:
    half a second before record `index`, exactly at it, and 1 ms after the last record
    (no offset: -1 / null / the log end, as the client reports it)."""
    return [("T0+%ds-500ms" % index, t0 + 1000 * index - 500, index),
            ("T0+%ds" % index, t0 + 1000 * index, index),
            ("after the last record", t0 + 1000 * (n - 1) + 1, None)]


def check_offset_for_time(name, ts, t0, want, oat):
    """Fails unless an offsets-for-times answer `oat` (an object with .offset and
    .timestamp, or None for "no offset") is the record `want` (None: no offset) with its
    own timestamp. Returns the offset found."""
    got = None if oat is None else oat.offset
    if got != want:
        fail("offsets_for_times(%s = %d): %r, expected %s" % (name, ts, oat, "None" if want is None else "offset %d" % want))
    if oat is not None and oat.timestamp != t0 + 1000 * want:
        fail("offsets_for_times(%s = %d): timestamp %d, expected the record's %d" % (name, ts, oat.timestamp, t0 + 1000 * want))
    log("offsets_for_times(%s) = %r" % (name, oat))
    return got


def check_seek(t0, got, n=SEEK_COUNT, index=SEEK_INDEX):
    """`got`: [(offset, key, value, timestamp)] read after seeking to `index`: must be
    records index..n-1 in order with their exact CreateTime timestamps."""
    want = [(i, k, v, ts) for i, (k, v, ts) in enumerate(timestamp_dataset(t0, n))][index:]
    return first_diff(want, list(got), "record (offset, key, value, timestamp) after the seek")


IDEMPOTENT_COUNT = 5000
IDEMPOTENT_PARTITIONS = 3


def idempotent_dataset(n=IDEMPOTENT_COUNT):
    """idempotent: [(b"key-%04d" % (i % 100), b"value-%06d" % i)]."""
    return [(b"key-%04d" % (i % 100), b"value-%06d" % i) for i in range(n)]


def check_idempotent(data, consumed, watermarks, npart=IDEMPOTENT_PARTITIONS, reports=None):
    """`consumed`: {partition: [(offset, key, value)]} read from the beginning;
    `watermarks`: {partition: (beginning, end)}. Every key stays on one partition and
    each partition holds exactly its records once, in send order, offsets 0.. and end
    offset = count. `reports`: [(partition, offset)] per record from the producer when
    the client reports them (else partitions are taken from where the keys were read).
    Returns the per-partition counts."""
    if reports is not None:
        expected = expected_by_partition(data, reports, npart)
    else:
        key_part = {}
        for q, recs in consumed.items():
            for off, k, _ in recs:
                if key_part.setdefault(k, q) != q:
                    fail("key %r read from partitions %d and %d" % (k, key_part[k], q))
        expected = {q: [] for q in range(npart)}
        for i, (k, v) in enumerate(data):
            q = key_part.get(k)
            if q is None:
                fail("no record of key %r read back (first sent at index %d: %r)" % (k, i, v))
            if q not in expected:
                fail("key %r read from partition %d, topic has %d" % (k, q, npart))
            expected[q].append((len(expected[q]), k, v))
        empty = [q for q in expected if not expected[q]]
        if empty:
            fail("keys did not spread: partitions %s got no records" % empty)
    check_partitions(expected, consumed, watermarks)
    return [len(expected[q]) for q in range(npart)]


# ---------------------------------------------------------------------------
# transactions (the Python clients; kafkajs/transactions.js builds the same plan)

TXN_PARTITIONS = 2
# (name, records, committed?) in the order one transactional producer runs them.
TXN_PLAN = (("A", 20, True), ("B", 15, False), ("C", 10, True))
# Zombie fencing: records P1 sends before P2 fences it, and P2's committed records.
TXN_ZOMBIE = 5
TXN_SUCCESSOR = 5


def txn_records(name, n):
    """[(partition, key, value)]: record i of transaction `name` goes to partition
    i % TXN_PARTITIONS with key b"key-<name>-<i>" and value b"<name>-<i>"."""
    return [(i % TXN_PARTITIONS, b"key-%s-%d" % (name.encode(), i), b"%s-%d" % (name.encode(), i)) for i in range(n)]


def txn_layout(plan=TXN_PLAN):
    """The partitions as Kafka lays them out after `plan`: each transaction's records
    of a partition take consecutive offsets, then its COMMIT/ABORT marker (a control
    batch of one record) takes the next (every partition is in every transaction).
    Returns ({partition: [(offset, key, value, committed)]}, {partition: [marker
    offsets]}, {partition: end offset})."""
    recs = {q: [] for q in range(TXN_PARTITIONS)}
    markers = {q: [] for q in range(TXN_PARTITIONS)}
    nxt = {q: 0 for q in range(TXN_PARTITIONS)}
    for name, n, committed in plan:
        for q, k, v in txn_records(name, n):
            recs[q].append((nxt[q], k, v, committed))
            nxt[q] += 1
        for q in range(TXN_PARTITIONS):
            markers[q].append(nxt[q])
            nxt[q] += 1
    return recs, markers, nxt


def check_txn_read(consumed, committed_only, what, ends=None):
    """`consumed`: {partition: [(offset, key, value)]} read from the beginning of the
    main topic after TXN_PLAN. read_committed (`committed_only`): exactly the records
    of the committed transactions, each once, at their offsets, in partition order;
    read_uncommitted: every record of every transaction. Never a control record.
    `ends`: {partition: end offset} as the client reports it, checked against the
    layout. Returns the number of records."""
    recs, markers, end = txn_layout()
    aborted = {v for q in recs for _, _, v, c in recs[q] if not c}
    for q, got in consumed.items():
        if q not in recs:
            fail("%s: records from unexpected partition %d" % (what, q))
        for off, k, v in got:
            if off in markers[q]:
                fail("%s: control record delivered to the application: partition %d offset %d, key %s, value %s"
                     % (what, q, off, short(k), short(v)))
            if committed_only and v in aborted:
                fail("%s: record %s of an aborted transaction delivered (partition %d offset %d)" % (what, short(v), q, off))
    total = 0
    for q in recs:
        want = [(o, k, v) for o, k, v, c in recs[q] if c or not committed_only]
        d = first_diff(want, list(consumed.get(q, [])), "%s partition %d record" % (what, q))
        if d:
            fail(d)
        total += len(want)
    if ends is not None:
        for q in recs:
            if ends.get(q) != end[q]:
                fail("%s: partition %d end offset: expected %d (%d records + %d markers), got %s"
                     % (what, q, end[q], len(recs[q]), len(markers[q]), ends.get(q)))
    return total


def txn_transform(consumed):
    """Consume-transform-produce over the read_committed records of the main topic
    (`consumed`: {partition: [(offset, key, value)]}): transaction D (committed)
    processes transaction A's records, E (aborted) transaction C's. Returns
    (d_out, d_offsets, e_out, e_offsets): out = [(partition, key, b"D:"/b"E:" + value)]
    for the output topic (same partition), offsets = {partition: last processed + 1}
    for the group."""
    res = []
    for tag, src in ((b"D:", b"A-"), (b"E:", b"C-")):
        out, offsets = [], {}
        for q in sorted(consumed):
            for off, k, v in consumed[q]:
                if v.startswith(src):
                    out.append((q, k, tag + v))
                    offsets[q] = off + 1
        if sorted(offsets) != list(range(TXN_PARTITIONS)):
            fail("consume-transform-produce: no %s records read from partitions %s"
                 % (src.decode(), sorted(set(range(TXN_PARTITIONS)) - set(offsets))))
        res += [out, offsets]
    return tuple(res)


def check_txn_out(consumed, d_out, what):
    """The output topic read with read_committed holds exactly transaction D's records,
    per partition in send order at offsets 0.. (none of the aborted E)."""
    for q in range(TXN_PARTITIONS):
        want = [(i, k, v) for i, (k, v) in enumerate((k, v) for p, k, v in d_out if p == q)]
        d = first_diff(want, list(consumed.get(q, [])), "%s partition %d record" % (what, q))
        if d:
            fail(d)
    extra = set(consumed) - set(range(TXN_PARTITIONS))
    if extra:
        fail("%s: records from unexpected partitions %s" % (what, sorted(extra)))


def txn_fence_records(name, n, start=0):
    """Records of the zombie-fencing step (one-partition topic): [(0, b"key-<name>-<i>", b"<name>-<i>")]."""
    return [(0, b"key-%s-%d" % (name.encode(), i), b"%s-%d" % (name.encode(), i)) for i in range(start, start + n)]


def check_txn_fence(consumed, what):
    """The fencing topic read with read_committed: exactly P2's committed records in
    order (offsets not checked: P1's aborted records and markers sit before them), none
    of the fenced P1's."""
    got = [(k, v) for _, k, v in consumed.get(0, [])]
    zombie = [g for g in got if g[1].startswith(b"Z-")]
    if zombie:
        fail("%s: %d record(s) of the fenced producer P1 delivered, first %s" % (what, len(zombie), short(zombie[0][1])))
    d = first_diff([(k, v) for _, k, v in txn_fence_records("P2", TXN_SUCCESSOR)], got, "%s record" % what)
    if d:
        fail(d)
    extra = set(consumed) - {0}
    if extra:
        fail("%s: records from unexpected partitions %s" % (what, sorted(extra)))


# ---------------------------------------------------------------------------
# security (SASL/PLAIN, issue 16; kafkajs/security.js builds the same records)

SECURITY_COUNT = 20
SECURITY_PARTITIONS = 2
SECURITY_INTRUDER = 5  # records each refused client tries to produce
# The consumer group's commit: {partition: offset} with this metadata.
SECURITY_COMMIT = {0: 6, 1: 4}
SECURITY_COMMIT_METADATA = "sasl-alice"


def security_records(npart=SECURITY_PARTITIONS):
    """alice's records: [(partition, key, value)], record i to partition i % npart,
    key b"sec-<ii>", value b"alice-<ii>"."""
    return [(i % npart, b"sec-%02d" % i, b"alice-%02d" % i) for i in range(SECURITY_COUNT)]


def intruder_records(who, npart=SECURITY_PARTITIONS):
    """What a client that must not get in tries to produce: value b"<who>-<i>"."""
    return [(i % npart, b"intruder-%d" % i, b"%s-%d" % (who.encode(), i)) for i in range(SECURITY_INTRUDER)]


def check_security_log(consumed, what, npart=SECURITY_PARTITIONS):
    """`consumed`: {partition: [(offset, key, value)]} read from the beginning: exactly
    alice's records, per partition in produce order at offsets 0.. (nothing else, in
    particular no record of a refused client)."""
    intruders = [(q, o, v) for q, recs in consumed.items() for o, _, v in recs if not v.startswith(b"alice-")]
    if intruders:
        q, o, v = intruders[0]
        fail("%s: %d record(s) not produced by alice, first at partition %d offset %d: %s"
             % (what, len(intruders), q, o, short(v)))
    extra = set(consumed) - set(range(npart))
    if extra:
        fail("%s: records from unexpected partitions %s" % (what, sorted(extra)))
    for q in range(npart):
        want = [(i, k, v) for i, (k, v) in enumerate((k, v) for p, k, v in security_records(npart) if p == q)]
        d = first_diff(want, list(consumed.get(q, [])), "%s partition %d record" % (what, q))
        if d:
            fail(d)


AUTH_FAILURE_MARKERS = ("SaslAuthenticationFailed", "SASL_AUTHENTICATION_FAILED", "Authentication failed",
                        "authentication error", "Invalid username or password")


def names_auth_failure(text):
    """Whether an error text (exception chain, log lines) names a SASL authentication failure."""
    low = text.lower()
    return any(m.lower() in low for m in AUTH_FAILURE_MARKERS)


def _recv_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            fail("connection closed by the broker after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def abandon_member_id(group, topics, protocol="cooperative-sticky", session_timeout_ms=6000):
    """Sends one JoinGroup v5 without a member id to the bootstrap broker (Strom's single node
    is every group's coordinator) and never uses the id the broker hands out with
    MEMBER_ID_REQUIRED (KIP-394), as a client that throws that answer away does (librdkafka:
    "JoinGroup response: discarding outdated request"). Kafka holds a join phase for such an
    id until its session timeout expires, then completes the rebalance without it. Raw
    protocol, stdlib only. Returns the abandoned member id."""
    import socket
    import struct

    def s16(text):
        b = text.encode()
        return struct.pack(">h", len(b)) + b

    # ConsumerProtocolSubscription v0: version, topics, user_data (null).
    meta = struct.pack(">hi", 0, len(topics)) + b"".join(s16(t) for t in topics) + struct.pack(">i", -1)
    body = (s16(group) + struct.pack(">ii", session_timeout_ms, 300000) + s16("")  # no member id
            + struct.pack(">h", -1)  # group_instance_id: null
            + s16("consumer") + struct.pack(">i", 1) + s16(protocol) + struct.pack(">i", len(meta)) + meta)
    request = struct.pack(">hhi", 11, 5, 1) + s16("abandoned-member-id") + body  # JoinGroup v5
    host, port = bootstrap().rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _recv_exactly(s, 4))[0]
        response = _recv_exactly(s, size)
    correlation, _throttle, error, _generation = struct.unpack(">iihi", response[:14])
    pos = 14
    strings = []
    for _ in range(3):  # protocol_name, leader, member_id
        n = struct.unpack(">h", response[pos:pos + 2])[0]
        strings.append(response[pos + 2:pos + 2 + max(n, 0)].decode())
        pos += 2 + max(n, 0)
    if correlation != 1 or error != 79:
        fail("JoinGroup without a member id: expected MEMBER_ID_REQUIRED (79), got error %d" % error)
    return strings[2]
