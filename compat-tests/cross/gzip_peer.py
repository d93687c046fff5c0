"""The Python side of kafkajs/codecs.js (kafkajs has only gzip built in).

`gzip_peer.py check TOPIC FILE`: confluent-kafka, kafka-python and aiokafka each read
TOPIC (gzip batches produced by kafkajs) and must see exactly the records in FILE.
`gzip_peer.py produce PREFIX FILE`: each of them produces FILE's records gzip-compressed
to PREFIX-<client>, for kafkajs to read back.
FILE is JSON: [[key_hex|null, value_hex|null, [[header_name, value_hex|null], ...]], ...].
"""

import importlib.util
import json
import os
import sys

import compat
from compat import fail

spec = importlib.util.spec_from_file_location("cross_codecs", os.path.join(os.path.dirname(__file__), "codecs.py"))
cc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cc)


def load(path):
    unhex = lambda x: None if x is None else bytes.fromhex(x)  # noqa: E731
    return [(unhex(k), unhex(v), [(n, unhex(hv)) for n, hv in h]) for k, v, h in json.load(open(path))]


mode, arg, path = sys.argv[1:4]
recs = load(path)
cc.N = len(recs)
if mode == "check":
    want = [(i, k, v, cc.norm_headers(h)) for i, (k, v, h) in enumerate(recs)]
    for client in cc.CLIENTS:
        got = cc.CONSUME[client](arg)
        if got != want:
            bad = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            fail("%s read %d/%d kafkajs gzip records; first difference at %d: got %r want %r" % (
                client, len(got), len(want), bad, got[bad:bad + 1], want[bad:bad + 1]))
    compat.passed("kafkajs gzip read back identical by %s" % ", ".join(cc.CLIENTS))
elif mode == "produce":
    for client in cc.CLIENTS:
        cc.PRODUCE[client]("%s-%s" % (arg, client), "gzip", recs)
    compat.passed("produced gzip with %s" % ", ".join(cc.CLIENTS))
else:
    fail("usage: gzip_peer.py check|produce ARG FILE")
