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
