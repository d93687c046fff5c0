#!/usr/bin/env python3
"""Data helper for the kcat scenarios (system python3, stdlib only).

kcat reads producer input as raw bytes split on a message delimiter (-D) and
a key delimiter (-K), and it can print consumed records with explicit
lengths (-f '%o %K %S\\n%k%s\\n'), so binary payloads survive both ways.
Values therefore must not contain the message delimiter: the data set is
generated with that 6-byte sequence excluded (see MSG_DELIM). Keys are ASCII
and never contain the key delimiter (TAB); values may contain TAB since kcat
splits the key at the first TAB.

  kcat_data.py gen-auto FILE           write the produce-consume-auto input
  kcat_data.py check-auto FILE         check consumed output against it
  kcat_data.py check-metadata FILE TOPIC PARTITIONS   check `kcat -L -J` JSON
  kcat_data.py gen-large FILE / check-large FILE      large-messages (1 MiB values)
  kcat_data.py gen-compression FILE / check-compression FILE CODEC
  kcat_data.py seek-t0                 print T0 for seek-timestamp (now - 1 h, ms)
  kcat_data.py seek-queries T0         print "name<TAB>timestamp<TAB>offset|none" lines
  kcat_data.py check-seek FILE T0      check `-o s@...` output ('%o %T %K %S\n%k%s\n')
  kcat_data.py gen-idempotent FILE     5,000 "key<TAB>value" lines
  kcat_data.py check-idempotent FILE PARTITIONS EARLIEST_FILE LATEST_FILE
                                       check '%p %o %K %S\n%k%s\n' output and `kcat -Q`
                                       watermark answers
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import compat  # noqa: E402
from compat import fail, first_diff  # noqa: E402

# Keep in sync with MSG_DELIM_ARG in the .sh scenarios (kcat's -D syntax).
MSG_DELIM = b"\xfe\x01\xfd\x02\xfc\x03"
KEY_DELIM = b"\t"


def dataset():
    return compat.auto_dataset(avoid=[MSG_DELIM])


def gen_auto(path):
    with open(path, "wb") as f:
        for k, v in dataset():
            assert KEY_DELIM not in k
            f.write(k + KEY_DELIM + v + MSG_DELIM)


def parse_kcat(path, fields=1):
    """Parse output of kcat -f '%o %K %S\\n%k%s\\n' into [(offset, key, value)]
    (key/value None when kcat reports length -1, i.e. NULL). `fields`: how many
    integers precede %K %S in the header line (e.g. 2 for '%p %o %K %S\\n%k%s\\n'
    or '%o %T %K %S\\n%k%s\\n'); all of them start the returned tuples."""
    data = open(path, "rb").read()
    out = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            fail("truncated kcat output at byte %d: %r" % (pos, data[pos:pos + 80]))
        try:
            ints = [int(x) for x in data[pos:nl].split(b" ")]
            if len(ints) != fields + 2:
                raise ValueError
            head, (klen, vlen) = ints[:fields], ints[fields:]
        except ValueError:
            fail("unparseable kcat record header at byte %d: %r" % (pos, data[pos:nl][:80]))
        pos = nl + 1
        key = None
        if klen >= 0:
            key = data[pos:pos + klen]
            pos += klen
        val = None
        if vlen >= 0:
            val = data[pos:pos + vlen]
            pos += vlen
        if data[pos:pos + 1] != b"\n":
            fail("record %s not followed by newline (lengths %d/%d wrong?)" % (" ".join(map(str, head)), klen, vlen))
        pos += 1
        out.append(tuple(head) + (key, val))
    return out


def check_auto(path):
    expected = dataset()
    recs = parse_kcat(path)
    got = [(k, v) for _, k, v in recs]
    d = first_diff(expected, got)
    if d:
        fail(d)
    offs = [o for o, _, _ in recs]
    if offs != list(range(len(expected))):
        fail("consumed offsets not 0..%d: %s" % (len(expected) - 1, first_diff(list(range(len(expected))), offs, "offset")))
    print("PASS: %d messages byte-identical, offsets contiguous" % len(expected))


def check_metadata(path, topic, nparts):
    """Exit 0 if `kcat -L -J` output lists topic with nparts partitions, each
    with a leader among the listed brokers; else exit 1 with the reason."""
    try:
        md = json.load(open(path, "rb"))
    except ValueError as e:
        print("unparseable kcat -L -J output: %s" % e)
        sys.exit(1)
    brokers = {b.get("id") for b in md.get("brokers", [])}
    if not brokers:
        print("metadata lists no brokers")
        sys.exit(1)
    tops = [t for t in md.get("topics", []) if t.get("topic") == topic]
    if not tops:
        print("topic %s not listed (%d topics listed)" % (topic, len(md.get("topics", []))))
        sys.exit(1)
    t = tops[0]
    if t.get("error"):
        print("topic %s has error %s" % (topic, t["error"]))
        sys.exit(1)
    parts = t.get("partitions", [])
    if len(parts) != nparts:
        print("topic %s has %d partitions, expected %d" % (topic, len(parts), nparts))
        sys.exit(1)
    for p in parts:
        if p.get("error") or p.get("leader") not in brokers:
            print("partition %s: leader %s (brokers %s) error %s" % (p.get("partition"), p.get("leader"), sorted(brokers), p.get("error")))
            sys.exit(1)
    print("topic %s listed with %d partition(s), brokers %s" % (topic, nparts, sorted(brokers)))
    sys.exit(0)


def write_records(path, records, delim=MSG_DELIM):
    """kcat -P -K '\\t' -D <delim> input for [(key, value)]."""
    with open(path, "wb") as f:
        for k, v in records:
            assert KEY_DELIM not in k and delim not in v and (delim != b"\n" or b"\n" not in k)
            f.write(k + KEY_DELIM + v + delim)


def large():
    return compat.large_dataset(avoid=[MSG_DELIM])


def check_large(path):
    recs = parse_kcat(path)
    compat.check_large(large(), recs)
    print("PASS: %d x 1 MiB values byte-identical at offsets 0..%d (default fetch sizes)" % (
        compat.LARGE_COUNT, compat.LARGE_COUNT - 1))


def check_compression(path, codec):
    d = compat.check_log(compat.compression_dataset(), parse_kcat(path))
    if d:
        fail("%s: %s" % (codec, d))
    print("%s: %d records identical" % (codec, compat.COMPRESSION_COUNT))


def seek_queries(t0):
    for name, ts, want in compat.seek_queries(t0):
        print("%s\t%d\t%s" % (name, ts, "none" if want is None else want))


def check_seek(path, t0):
    # '%o %T %K %S\n%k%s\n' -> (offset, timestamp, key, value) -> (offset, key, value, timestamp)
    got = [(o, k, v, ts) for o, ts, k, v in parse_kcat(path, fields=2)]
    d = compat.check_seek(t0, got)
    if d:
        fail(d)
    print("read %d..%d after -o s@<T0+%ds> with exact timestamps" % (
        compat.SEEK_INDEX, compat.SEEK_COUNT - 1, compat.SEEK_INDEX))


def parse_query(path):
    """`kcat -Q` answers ("<topic> [<partition>] offset <n>" lines) -> {partition: n}."""
    out = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        parts = line.split()
        if len(parts) == 4 and parts[2] == "offset" and parts[1].startswith("["):
            out[int(parts[1].strip("[]"))] = int(parts[3])
    return out


def check_idempotent(path, npart, earliest_path, latest_path):
    data = compat.idempotent_dataset()
    consumed = {}
    for p, off, k, v in parse_kcat(path, fields=2):
        consumed.setdefault(p, []).append((off, k, v))
    lo, hi = parse_query(earliest_path), parse_query(latest_path)
    wm = {q: (lo.get(q), hi.get(q)) for q in range(npart)}
    counts = compat.check_idempotent(data, consumed, wm, npart)
    print("PASS: %d records, per partition %s: exactly once, in send order, latest offset = count" % (len(data), counts))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "gen-auto":
        gen_auto(sys.argv[2])
    elif cmd == "check-auto":
        check_auto(sys.argv[2])
    elif cmd == "check-metadata":
        check_metadata(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "gen-large":
        write_records(sys.argv[2], large())
    elif cmd == "check-large":
        check_large(sys.argv[2])
    elif cmd == "gen-compression":
        write_records(sys.argv[2], compat.compression_dataset(), b"\n")
    elif cmd == "check-compression":
        check_compression(sys.argv[2], sys.argv[3])
    elif cmd == "seek-t0":
        print(compat.seek_t0())
    elif cmd == "seek-queries":
        seek_queries(int(sys.argv[2]))
    elif cmd == "check-seek":
        check_seek(sys.argv[2], int(sys.argv[3]))
    elif cmd == "gen-idempotent":
        write_records(sys.argv[2], compat.idempotent_dataset(), b"\n")
    elif cmd == "check-idempotent":
        check_idempotent(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        print(__doc__)
        sys.exit(2)
