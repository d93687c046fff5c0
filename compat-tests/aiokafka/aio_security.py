"""aiokafka steps shared by the security scenarios (issue 16): `security` (SASL/PLAIN on
SASL_PLAINTEXT), `security-ssl` (mTLS on SSL), `security-sasl-ssl` (SASL/PLAIN on
SASL_SSL), `security-scram` (SCRAM-SHA-256/512) and `security-oauthbearer` (OAUTHBEARER,
unsecured JWTs). Every function takes the client keyword arguments (bootstrap_servers plus
the security settings) of whoever acts.

- alice_steps(): AIOKafkaAdminClient.create_topics (2 partitions), 20 records from an
  idempotent producer (record i to partition i % 2), read back with assign(); a group
  member (subscribe) reads them and commits {0: 6, 1: 4} with metadata;
  list_consumer_group_offsets reads the commit back.
- refused_login(): an idempotent producer whose SASL login is refused: start() fails
  within 20 s (KafkaConnectionError "Unable to bootstrap", with the bootstrap
  connection's SaslAuthenticationFailed, error 58, logged as its cause); optionally the
  broker logged the refusal with a given reason.
- refused_connection(): an idempotent producer whose connections are refused at TLS
  level (by the broker or by the client itself): start() fails within 20 s, and the
  broker logged the TLS refusal.
Should a refused producer start, its records are sent and the scenario fails.
"""

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

import aio_helpers as ah
import compat
from compat import Deadline, fail, log

AUTH_WAIT = 20  # seconds for a refused client's error to surface
READ_TIMEOUT = 60
NPART = compat.SECURITY_PARTITIONS


def tps(topic):
    return [TopicPartition(topic, q) for q in range(NPART)]


class Collect(logging.Handler):
    """Keeps aiokafka's log lines (WARNING and up) for the refused clients' checks."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        try:
            self.lines.append("%s %s: %s" % (record.levelname, record.name, record.getMessage()))
        except Exception:  # noqa: BLE001
            pass


collect = Collect()
logging.getLogger("aiokafka").addHandler(collect)


async def read_topic(cfg, topic, what):
    """assign() + seek_to_beginning(); getmany() until SECURITY_COUNT records arrived and
    every position reached its end offset, then one more short poll."""
    c = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **cfg)
    await ah.bounded(c.start(), 30, "%s: consumer start" % what)
    c.assign(tps(topic))
    await ah.bounded(c.seek_to_beginning(*tps(topic)), 30, "seek_to_beginning")
    ends = await ah.bounded(c.end_offsets(tps(topic)), 30, "end_offsets")
    want = compat.SECURITY_COUNT // NPART
    if any(ends[tp] != want for tp in tps(topic)):
        fail("%s: end offsets %s, expected %d for every partition" % (what, ends, want))
    got, total = {}, 0
    dl = Deadline(READ_TIMEOUT)
    while True:
        for tp, recs in (await c.getmany(timeout_ms=500)).items():
            got.setdefault(tp.partition, []).extend((r.offset, r.key, r.value) for r in recs)
            total += len(recs)
        if total >= compat.SECURITY_COUNT and all([await c.position(tp) >= ends[tp] for tp in tps(topic)]):
            for tp, recs in (await c.getmany(timeout_ms=300)).items():
                got.setdefault(tp.partition, []).extend((r.offset, r.key, r.value) for r in recs)
            break
        if dl.expired():
            fail("%s: %d/%d records after %ds" % (what, total, compat.SECURITY_COUNT, READ_TIMEOUT))
    await ah.bounded(c.stop(), 30, "consumer stop")
    return got


async def produce_as_alice(cfg, topic):
    p = AIOKafkaProducer(enable_idempotence=True, request_timeout_ms=30000, **cfg)
    await ah.bounded(p.start(), 30, "alice's producer start")
    futures = []
    for q, k, v in compat.security_records():
        futures.append((q, v, await ah.bounded(p.send(topic, key=k, value=v, partition=q), 30, "send")))
    seen = {q: 0 for q in range(NPART)}
    for q, v, f in futures:
        try:
            md = await asyncio.wait_for(f, 30)
        except Exception as e:  # noqa: BLE001
            fail("alice's record %s: delivery failed: %r" % (v, e))
        if (md.partition, md.offset) != (q, seen[q]):
            fail("alice's record %s: delivered to %d@%d, expected %d@%d" % (v, md.partition, md.offset, q, seen[q]))
        seen[q] += 1
    await ah.bounded(p.stop(), 30, "producer stop")
    log("alice produced %d records" % len(futures))


async def group_commit(cfg, admin, topic, group):
    c = AIOKafkaConsumer(topic, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=10000, **cfg)
    await ah.bounded(c.start(), 30, "group member start")
    n = 0
    dl = Deadline(READ_TIMEOUT)
    while n < compat.SECURITY_COUNT:
        if dl.expired():
            fail("group member: %d/%d records after %ds" % (n, compat.SECURITY_COUNT, READ_TIMEOUT))
        n += sum(len(recs) for recs in (await c.getmany(timeout_ms=500)).values())
    offsets = {TopicPartition(topic, q): (o, compat.SECURITY_COMMIT_METADATA) for q, o in compat.SECURITY_COMMIT.items()}
    try:
        await ah.bounded(c.commit(offsets), 30, "commit")
    except Exception as e:  # noqa: BLE001
        fail("group member: commit %s failed: %r" % (compat.SECURITY_COMMIT, e))
    await ah.bounded(c.stop(), 30, "group member stop")
    got = await ah.bounded(admin.list_consumer_group_offsets(group), 30, "list_consumer_group_offsets")
    seen = {tp.partition: (om.offset, om.metadata) for tp, om in got.items() if tp.topic == topic}
    want = {q: (o, compat.SECURITY_COMMIT_METADATA) for q, o in compat.SECURITY_COMMIT.items()}
    if seen != want:
        fail("group %s: committed offsets read back %s, expected %s" % (group, seen, want))
    log("group %s: committed %s read back" % (group, seen))


async def alice_steps(cfg, admin, topic, group):
    """alice (with her started AIOKafkaAdminClient `admin`): CreateTopics, produce, read
    back (assign), group commit read back."""
    await ah.create_topic_with(admin, NewTopic(name=topic, num_partitions=NPART, replication_factor=1))
    await ah.wait_partitions(admin, topic, NPART)
    log("alice created %s (%d partitions)" % (topic, NPART))
    await produce_as_alice(cfg, topic)
    compat.check_security_log(await read_topic(cfg, topic, "alice's read"), "alice's read")
    log("alice read her %d records back (assign)" % compat.SECURITY_COUNT)
    await group_commit(cfg, admin, topic, group)


def _excs(e):
    while e is not None:
        yield e
        e = e.__cause__ or e.__context__


async def _start_fails(label, who, cfg, topic):
    """An idempotent producer with `cfg`: start() must fail within AUTH_WAIT. Returns
    (exception, seconds, aiokafka's log lines meanwhile)."""
    mark = len(collect.lines)
    p = AIOKafkaProducer(enable_idempotence=True, request_timeout_ms=10000, **cfg)
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(p.start(), AUTH_WAIT)
    except asyncio.TimeoutError:
        await ah.bounded(p.stop(), 10, "producer stop")
        fail("%s (%s): producer start() neither failed nor succeeded within %ds" % (label, who, AUTH_WAIT))
    except Exception as e:  # noqa: BLE001
        secs = time.monotonic() - t0
        await ah.bounded(p.stop(), 10, "producer stop")
        logs = collect.lines[mark:]
        log("%s (%s): start() raised after %.1fs: %s: %s" % (label, who, secs, type(e).__name__, e))
        for line in logs[:3]:
            log("  logged: %s" % line)
        return e, secs, logs
    sent = []
    for q, k, v in compat.intruder_records(who):
        try:
            md = await asyncio.wait_for(p.send_and_wait(topic, key=k, value=v, partition=q), 15)
            sent.append((md.partition, md.offset))
        except Exception as e:  # noqa: BLE001
            sent.append(repr(e))
    await ah.bounded(p.stop(), 10, "producer stop")
    fail("%s (%s): the producer started (connected); its sends: %s" % (label, who, sent))


async def refused_login(label, user, cfg, topic, own=None, reason=None):
    """start() fails naming the SASL failure (raised, or logged for the failed bootstrap
    connection). With `own` and `reason`, the broker must also have logged the refused
    login with that reason (OwnBroker.expect_auth_refusal()). Returns a short description."""
    mark = own.log_mark() if own is not None else None
    e, secs, logs = await _start_fails(label, user, cfg, topic)
    broker = ""
    if own is not None and reason is not None:
        broker = "; broker: %s" % own.expect_auth_refusal(mark, reason, "%s (%s)" % (label, user))
    # aiokafka's class is errors.SaslAuthenticationFailed (error 58).
    if any(type(x).__name__ == "SaslAuthenticationFailed" for x in _excs(e)):
        return "SaslAuthenticationFailed raised after %.1fs%s" % (secs, broker)
    named = [line for line in logs if "SaslAuthenticationFailed" in line]
    if named:
        return "%s after %.1fs, SaslAuthenticationFailed logged (%s)%s" % (
            type(e).__name__, secs, named[0].rsplit("SaslAuthenticationFailed: ", 1)[-1][:120], broker)
    fail("%s (%s): start() failed without naming the SASL authentication failure: %s: %s; logged: %s"
         % (label, user, type(e).__name__, e, logs[:5]))


async def refused_connection(label, who, cfg, topic, own):
    """start() fails and the broker logged at least one TLS refusal meanwhile. Returns a
    short description (with the first logged error that names SSL, if any)."""
    mark = own.log_mark()
    e, secs, logs = await _start_fails(label, who, cfg, topic)
    broker = own.tls_refusals(mark)
    if not broker:
        fail("%s (%s): the broker logged no TLS refusal (\"TLS handshake failed\"); client: %s: %s"
             % (label, who, type(e).__name__, e))
    log("%s (%s): broker: %d TLS refusal(s), first: %s" % (label, who, len(broker), broker[0]))
    why = next((line for line in logs if "SSL" in line), logs[0] if logs else None)
    if why:
        why = why.split(": ", 1)[-1]  # without "LEVEL logger: "
    return "%s after %.1fs%s; broker: %s" % (
        type(e).__name__, secs, " (logged: %s)" % why[:160] if why else "", broker[0])
