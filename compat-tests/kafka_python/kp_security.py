"""kafka-python steps shared by the security scenarios (issue 16): `security` (SASL/PLAIN
on SASL_PLAINTEXT), `security-ssl` (mTLS on SSL), `security-sasl-ssl` (SASL/PLAIN on
SASL_SSL), `security-scram` (SCRAM-SHA-256/512) and `security-oauthbearer` (OAUTHBEARER,
unsecured JWTs). Every function takes the client keyword arguments (bootstrap_servers plus
the security settings) of whoever acts.

- alice_steps(): KafkaAdminClient.create_topics (2 partitions), 20 records from a
  KafkaProducer (record i to partition i % 2), read back with assign(); a group member
  (subscribe) reads them and commits {0: 6, 1: 4} with metadata; a second consumer of the
  group reads the commit back (committed(metadata=True)).
- refused_login(): a producer whose SASL login is refused fails within 20 s, naming
  SaslAuthenticationFailedError (raised, or logged for the failed bootstrap connections:
  kafka-python 3.0.12 retries a refused login until bootstrap_timeout_ms, here 10 s, then
  raises KafkaTimeoutError "Unable to bootstrap"); none of its records is delivered
  (optionally: the broker logged the refusal with a given reason).
- refused_connection(): a producer whose connections are refused at TLS level (by the
  broker or by the client itself) fails within 20 s without delivering anything, and the
  broker logged the TLS refusal.
"""

import logging
import threading
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

import compat
import kp_helpers as kp
from compat import Deadline, fail, log

AUTH_WAIT = 20  # seconds for a refused client's error to surface
READ_TIMEOUT = 60
NPART = compat.SECURITY_PARTITIONS


def tps(topic):
    return [TopicPartition(topic, q) for q in range(NPART)]


class Collect(logging.Handler):
    """Keeps kafka-python's log lines (WARNING and up) for the refused clients' checks."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        try:
            self.lines.append("%s %s: %s" % (record.levelname, record.name, record.getMessage()))
        except Exception:  # noqa: BLE001
            pass


collect = Collect()
logging.getLogger("kafka").addHandler(collect)


def read_topic(cfg, topic, what):
    """assign() + seek_to_beginning(); poll until SECURITY_COUNT records arrived and every
    position reached its end offset, then one more poll. Returns {partition: [(offset, key, value)]}."""
    c = KafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **cfg)
    c.assign(tps(topic))
    c.seek_to_beginning(*tps(topic))
    got, total = {}, 0
    dl = Deadline(READ_TIMEOUT)
    ends = c.end_offsets(tps(topic))
    want = compat.SECURITY_COUNT // NPART
    if any(ends[tp] != want for tp in tps(topic)):
        fail("%s: end offsets %s, expected %d for every partition" % (what, ends, want))
    while True:
        for tp, recs in c.poll(timeout_ms=500).items():
            got.setdefault(tp.partition, []).extend((r.offset, r.key, r.value) for r in recs)
            total += len(recs)
        if total >= compat.SECURITY_COUNT and all(c.position(tp) >= ends[tp] for tp in tps(topic)):
            for tp, recs in c.poll(timeout_ms=300).items():
                got.setdefault(tp.partition, []).extend((r.offset, r.key, r.value) for r in recs)
            break
        if dl.expired():
            fail("%s: %d/%d records after %ds" % (what, total, compat.SECURITY_COUNT, READ_TIMEOUT))
    c.close(autocommit=False)
    return got


def produce_as_alice(cfg, topic):
    p = KafkaProducer(**cfg)
    futures = [(q, v, p.send(topic, key=k, value=v, partition=q)) for q, k, v in compat.security_records()]
    p.flush(timeout=30)
    seen = {q: 0 for q in range(NPART)}
    for q, v, f in futures:
        try:
            md = f.get(timeout=10)
        except Exception as e:  # noqa: BLE001
            fail("alice's record %s: delivery failed: %r" % (v, e))
        if (md.partition, md.offset) != (q, seen[q]):
            fail("alice's record %s: delivered to %d@%d, expected %d@%d" % (v, md.partition, md.offset, q, seen[q]))
        seen[q] += 1
    p.close(timeout=10)
    log("alice produced %d records" % len(futures))


def group_commit(cfg, topic, group):
    c = KafkaConsumer(topic, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                      session_timeout_ms=10000, **cfg)
    n = 0
    dl = Deadline(READ_TIMEOUT)
    while n < compat.SECURITY_COUNT:
        if dl.expired():
            fail("group member: %d/%d records after %ds" % (n, compat.SECURITY_COUNT, READ_TIMEOUT))
        n += sum(len(recs) for recs in c.poll(timeout_ms=1000).values())
    offsets = {TopicPartition(topic, q): OffsetAndMetadata(o, compat.SECURITY_COMMIT_METADATA, -1)
               for q, o in compat.SECURITY_COMMIT.items()}
    try:
        c.commit(offsets, timeout_ms=15000)
    except Exception as e:  # noqa: BLE001
        fail("group member: commit %s failed: %r" % (compat.SECURITY_COMMIT, e))
    c.close(autocommit=False)
    c2 = KafkaConsumer(group_id=group, enable_auto_commit=False, **cfg)
    seen = {}
    for tp in tps(topic):
        om = c2.committed(tp, metadata=True, timeout_ms=15000)
        seen[tp.partition] = None if om is None else (om.offset, om.metadata)
    c2.close(autocommit=False)
    want = {q: (o, compat.SECURITY_COMMIT_METADATA) for q, o in compat.SECURITY_COMMIT.items()}
    if seen != want:
        fail("group %s: committed offsets read back %s, expected %s" % (group, seen, want))
    log("group %s: committed %s read back" % (group, seen))


def alice_steps(cfg, topic, group):
    """alice: CreateTopics, produce, read back (assign), group commit read back."""
    a = KafkaAdminClient(request_timeout_ms=30000, **cfg)
    try:
        resp = a.create_topics([NewTopic(name=topic, num_partitions=NPART, replication_factor=1)], timeout_ms=30000)
    except Exception as e:  # noqa: BLE001
        fail("alice: create_topics(%s) failed: %r" % (topic, e))
    errs = [t for t in resp.to_object()["topics"] if t.get("error_code")] if hasattr(resp, "to_object") else \
        [t for t in resp.get("topics", []) if t.get("error_code")]
    if errs:
        fail("alice: create_topics(%s) returned errors: %s" % (topic, errs))
    log("alice created %s (%d partitions)" % (topic, NPART))
    kp.wait_partitions(topic, NPART, admin_client=a)
    a.close()
    produce_as_alice(cfg, topic)
    compat.check_security_log(read_topic(cfg, topic, "alice's read"), "alice's read")
    log("alice read her %d records back (assign)" % compat.SECURITY_COUNT)
    group_commit(cfg, topic, group)


def chain(e):
    out = []
    while e is not None and len(out) < 5:
        out.append("%s: %s" % (type(e).__name__, e))
        e = e.__cause__ or e.__context__
    return " <- ".join(out)


def _excs(e):
    while e is not None:
        yield e
        e = e.__cause__ or e.__context__


def _attempt(label, who, cfg, topic):
    """A KafkaProducer with `cfg`, in a thread joined with a timeout: its creation or its
    sends must fail within AUTH_WAIT and nothing may be delivered. Returns (exception,
    seconds, kafka-python's log lines meanwhile)."""
    res = {"delivered": []}
    mark = len(collect.lines)

    def attempt():
        p = None
        try:
            # kafka-python bootstraps in the constructor and retries a refused connection
            # (with backoff) until bootstrap_timeout_ms (default 30 s), then raises
            # KafkaTimeoutError; why the connections failed is only logged.
            # A longer reconnect backoff than the default 50 ms: every refused attempt logs.
            p = KafkaProducer(bootstrap_timeout_ms=10000, max_block_ms=10000, request_timeout_ms=10000,
                              reconnect_backoff_ms=500, reconnect_backoff_max_ms=2000, **cfg)
            futures = [p.send(topic, key=k, value=v, partition=q) for q, k, v in compat.intruder_records(who)]
            p.flush(timeout=10)
            for f in futures:
                try:
                    md = f.get(timeout=1)
                    res["delivered"].append((md.partition, md.offset))
                except Exception as e:  # noqa: BLE001
                    res.setdefault("exc", e)
            if "exc" not in res:
                res["exc"] = None
        except Exception as e:  # noqa: BLE001
            res["exc"] = e
        finally:
            res["secs"] = time.monotonic() - t0
            if p is not None:
                try:
                    p.close(timeout=2)
                except Exception:  # noqa: BLE001
                    pass

    t0 = time.monotonic()
    th = threading.Thread(target=attempt, daemon=True)
    th.start()
    th.join(AUTH_WAIT + 15)
    if th.is_alive():
        fail("%s (%s): the producer neither failed nor finished within %ds" % (label, who, AUTH_WAIT + 15))
    if res["delivered"]:
        fail("%s (%s): record(s) delivered: %s" % (label, who, res["delivered"]))
    exc = res.get("exc")
    if exc is None:
        fail("%s (%s): no error at all" % (label, who))
    if res["secs"] > AUTH_WAIT:
        fail("%s (%s): the error took %.1fs (> %ds): %s" % (label, who, res["secs"], AUTH_WAIT, chain(exc)))
    logs = collect.lines[mark:]
    log("%s (%s): raised after %.1fs: %s" % (label, who, res["secs"], chain(exc)))
    for line in logs[:3]:
        log("  logged: %s" % line)
    return exc, res["secs"], logs


def refused_login(label, user, cfg, topic, own=None, reason=None):
    """A KafkaProducer whose SASL login is refused: it fails within AUTH_WAIT, naming the
    SASL failure (in the exception, or in the log line of the failed connection), and
    delivers nothing. With `own` and `reason`, the broker must also have logged the
    refused login with that reason (OwnBroker.expect_auth_refusal()). Returns a short
    description."""
    mark = own.log_mark() if own is not None else None
    exc, secs, logs = _attempt(label, user, cfg, topic)
    broker = ""
    if own is not None and reason is not None:
        broker = "; broker: %s" % own.expect_auth_refusal(mark, reason, "%s (%s)" % (label, user))
    if any(type(x).__name__ == "SaslAuthenticationFailedError" for x in _excs(exc)):
        return "SaslAuthenticationFailedError raised after %.1fs%s" % (secs, broker)
    named = sorted((line for line in logs if "SaslAuthenticationFailedError" in line),
                   key=lambda line: "Connection lost" not in line)
    if named:
        return "%s after %.1fs, SaslAuthenticationFailedError logged (%s)%s" % (
            type(exc).__name__, secs, named[0].rsplit("SaslAuthenticationFailedError: ", 1)[-1].rstrip(")")[:120],
            broker)
    fail("%s (%s): the failure does not name the SASL authentication failure: %s; logged: %s"
         % (label, user, chain(exc), logs[:5]))


def refused_connection(label, who, cfg, topic, own):
    """A KafkaProducer whose connections are refused at TLS level (by the broker or by the
    client itself): it fails within AUTH_WAIT and delivers nothing, and the broker logged
    at least one TLS refusal meanwhile. Returns a short description (with the first
    logged connection error that names SSL, if any)."""
    mark = own.log_mark()
    exc, secs, logs = _attempt(label, who, cfg, topic)
    broker = own.tls_refusals(mark)
    if not broker:
        fail("%s (%s): the broker logged no TLS refusal (\"TLS handshake failed\"); client: %s"
             % (label, who, chain(exc)))
    log("%s (%s): broker: %d TLS refusal(s), first: %s" % (label, who, len(broker), broker[0]))
    # The connection errors kafka-python logged ("Connection lost: KafkaConnectionError: [SSL: …] …").
    errs = [line.rsplit("KafkaConnectionError: ", 1)[-1] for line in logs if "KafkaConnectionError: " in line]
    why = next((e for e in errs if "SSL" in e), errs[0] if errs else None)
    return "%s after %.1fs%s; broker: %s" % (
        type(exc).__name__, secs, " (logged: %s)" % why[:160] if why else "", broker[0])
