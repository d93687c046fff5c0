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


def parse_kcat(path):
    """Parse output of kcat -f '%o %K %S\\n%k%s\\n' into [(offset, key, value)]
    (key/value None when kcat reports length -1, i.e. NULL)."""
    data = open(path, "rb").read()
    out = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            fail("truncated kcat output at byte %d: %r" % (pos, data[pos:pos + 80]))
        try:
            off, klen, vlen = (int(x) for x in data[pos:nl].split(b" "))
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
            fail("record at offset %d not followed by newline (lengths %d/%d wrong?)" % (off, klen, vlen))
        pos += 1
        out.append((off, key, val))
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


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "gen-auto":
        gen_auto(sys.argv[2])
    elif cmd == "check-auto":
        check_auto(sys.argv[2])
    elif cmd == "check-metadata":
        check_metadata(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print(__doc__)
        sys.exit(2)
