"""confluent-kafka (librdkafka) steps shared by the security scenarios (issue 16):
`security` (SASL/PLAIN on SASL_PLAINTEXT), `security-ssl` (mTLS on SSL),
`security-sasl-ssl` (SASL/PLAIN on SASL_SSL), `security-scram` (SCRAM-SHA-256/512) and
`security-oauthbearer` (OAUTHBEARER, unsecured JWTs). Every function takes the client
configuration (bootstrap.servers plus the security settings) of whoever acts.

- alice_steps(): CreateTopics (2 partitions), 20 records (record i to partition i % 2),
  read back with assign(); a group member (subscribe) reads them, commits {0: 6, 1: 4}
  with metadata, and a second consumer of the group reads the commit back (committed()).
- refused_login(): a producer whose SASL login is refused: _AUTHENTICATION within 20 s,
  list_topics fails, none of its records delivered (optionally: the broker logged the
  refusal with a given reason).
- refused_connection(): a producer whose connections fail before any request is
  answered (TLS refused by either side): an error within 20 s, list_topics fails, none of
  its records delivered, and the broker logged the TLS refusal.
"""

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import ck_helpers as ck
import compat
from compat import Deadline, fail, log

AUTH_WAIT = 20  # seconds for a refused client's error to surface
READ_TIMEOUT = 60
NPART = compat.SECURITY_PARTITIONS
# A longer reconnect backoff than the default 100 ms for refused clients: librdkafka
# retries at once after each refusal, and every attempt logs a line.
BACKOFF = {"reconnect.backoff.ms": 500, "reconnect.backoff.max.ms": 2000}


def read_topic(cfg, topic, what):
    """assign() every partition from the beginning; read until every partition reported
    EOF and at least SECURITY_COUNT records arrived (a record beyond them would show up
    before EOF). Returns {partition: [(offset, key, value)]}."""
    c = Consumer({**cfg, "group.id": "strom-compat-unused", "enable.auto.commit": False,
                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in range(NPART)])
    got, eof, total = {}, set(), 0
    dl = Deadline(READ_TIMEOUT)
    while not (total >= compat.SECURITY_COUNT and eof >= set(range(NPART))):
        if dl.expired():
            fail("%s: %d/%d records, EOF on %s after %ds" % (what, total, compat.SECURITY_COUNT, sorted(eof), READ_TIMEOUT))
        for m in c.consume(num_messages=100, timeout=0.5):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                fail("%s: consumer error %s" % (what, m.error()))
            got.setdefault(m.partition(), []).append((m.offset(), m.key(), m.value()))
            eof.discard(m.partition())
            total += 1
    wm = {q: c.get_watermark_offsets(TopicPartition(topic, q), timeout=10, cached=False) for q in range(NPART)}
    c.close()
    want = compat.SECURITY_COUNT // NPART
    if any(wm[q] != (0, want) for q in range(NPART)):
        fail("%s: watermarks %s, expected (0, %d) for every partition" % (what, wm, want))
    return got


def produce_as_alice(cfg, topic):
    p = Producer({**cfg, "linger.ms": 5, "acks": "all"})
    reports, errors = {}, []

    def cb(err, msg):
        if err is not None:
            errors.append((msg.value(), err))
        else:
            reports[msg.value()] = (msg.partition(), msg.offset())

    for q, k, v in compat.security_records():
        p.produce(topic, key=k, value=v, partition=q, on_delivery=cb)
    left = p.flush(30)
    if left or errors:
        fail("alice's produce: %d undelivered, errors %s" % (left, errors[:3]))
    seen = {q: 0 for q in range(NPART)}
    for q, _, v in compat.security_records():
        if reports.get(v) != (q, seen[q]):
            fail("alice's record %s: delivery report %s, expected partition %d offset %d" % (v, reports.get(v), q, seen[q]))
        seen[q] += 1
    log("alice produced %d records" % len(reports))


def group_commit(cfg, topic, group):
    """A member of `group` (subscribe) reads the 20 records and commits SECURITY_COMMIT
    with metadata; a second consumer of the group reads the commit back."""
    c = Consumer({**cfg, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10000})
    c.subscribe([topic])
    n = 0
    dl = Deadline(READ_TIMEOUT)
    while n < compat.SECURITY_COUNT:
        if dl.expired():
            fail("group member: %d/%d records after %ds" % (n, compat.SECURITY_COUNT, READ_TIMEOUT))
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            fail("group member: consumer error %s" % m.error())
        n += 1
    offsets = [TopicPartition(topic, q, o, compat.SECURITY_COMMIT_METADATA) for q, o in sorted(compat.SECURITY_COMMIT.items())]
    try:
        res = c.commit(offsets=offsets, asynchronous=False)
    except KafkaException as e:
        fail("group member: commit %s failed: %s" % (compat.SECURITY_COMMIT, e.args[0]))
    bad = [tp for tp in res or [] if tp.error is not None]
    if bad:
        fail("group member: commit errors %s" % bad)
    c.close()
    c2 = Consumer({**cfg, "group.id": group, "enable.auto.commit": False})
    try:
        got = c2.committed([TopicPartition(topic, q) for q in range(NPART)], timeout=15)
    except KafkaException as e:
        fail("committed() failed: %s" % e.args[0])
    c2.close()
    seen = {tp.partition: (tp.offset, tp.metadata) for tp in got}
    want = {q: (o, compat.SECURITY_COMMIT_METADATA) for q, o in compat.SECURITY_COMMIT.items()}
    if seen != want:
        fail("group %s: committed offsets read back %s, expected %s" % (group, seen, want))
    log("group %s: committed %s read back" % (group, seen))


def alice_steps(cfg, topic, group):
    """alice: CreateTopics, produce, read back (assign), group commit read back."""
    a = AdminClient(cfg)
    fs = a.create_topics([NewTopic(topic, num_partitions=NPART, replication_factor=1)], operation_timeout=30,
                         request_timeout=30)
    try:
        fs[topic].result(timeout=30)
    except Exception as e:  # noqa: BLE001
        fail("alice: create_topics(%s) failed: %r" % (topic, e))
    ck.wait_partitions(a, topic, NPART)
    log("alice created %s (%d partitions)" % (topic, NPART))
    produce_as_alice(cfg, topic)
    compat.check_security_log(read_topic(cfg, topic, "alice's read"), "alice's read")
    log("alice read her %d records back (assign)" % compat.SECURITY_COUNT)
    group_commit(cfg, topic, group)


def _intruder(label, who, cfg, topic, done):
    """A producer with `cfg` sends intruder records and is polled until done(errors) gives
    an error (or AUTH_WAIT passes: fail); list_topics must fail and nothing be delivered.
    Returns (the error, seconds until it came)."""
    errors, delivered = [], []
    p = Producer({**cfg, "linger.ms": 5, "message.timeout.ms": 15000, **BACKOFF,
                  "error_cb": lambda e: errors.append(e)})

    def cb(err, msg):
        if err is None:
            delivered.append((msg.partition(), msg.offset(), msg.value()))

    for q, k, v in compat.intruder_records(who):
        p.produce(topic, key=k, value=v, partition=q, on_delivery=cb)
    t0 = time.monotonic()
    dl = Deadline(AUTH_WAIT)
    err = None
    while err is None and not dl.expired():
        p.poll(0.2)
        err = done(errors)
        if delivered:
            fail("%s (%s): a record was delivered: %s" % (label, who, delivered[0]))
    if err is None:
        fail("%s (%s): no error within %ds; errors seen: %s" % (label, who, AUTH_WAIT, [str(e) for e in errors][:5]))
    secs = time.monotonic() - t0
    log("%s (%s): %s after %.1fs" % (label, who, err, secs))
    try:
        md = p.list_topics(timeout=5)
        fail("%s (%s): list_topics returned metadata: brokers %s, topics %s"
             % (label, who, md.brokers, sorted(md.topics)))
    except KafkaException as e:
        log("%s (%s): list_topics failed as it should: %s" % (label, who, e.args[0]))
    p.purge()
    p.flush(5)
    if delivered:
        fail("%s (%s): a record was delivered: %s" % (label, who, delivered[0]))
    return err, secs


def refused_login(label, user, cfg, topic, own=None, reason=None):
    """A producer whose SASL login is refused: _AUTHENTICATION within AUTH_WAIT,
    list_topics fails, no delivery succeeds. With `own` and `reason`, the broker must also
    have logged the refused login with that reason (OwnBroker.expect_auth_refusal()).
    Returns a short description."""
    mark = own.log_mark() if own is not None else None
    auth, secs = _intruder(label, user, cfg, topic,
                           lambda errors: next((e for e in errors if e.code() == KafkaError._AUTHENTICATION), None))
    if not compat.names_auth_failure(str(auth)):
        log("note: the error text does not name the authentication failure: %s" % auth)
    what = "_AUTHENTICATION after %.1fs (%s)" % (secs, auth.str())
    if own is not None and reason is not None:
        what += "; broker: %s" % own.expect_auth_refusal(mark, reason, "%s (%s)" % (label, user))
    return what


def refused_connection(label, who, cfg, topic, own):
    """A producer whose connections are refused at TLS level (by the broker or by the
    client itself): an error within AUTH_WAIT, list_topics fails, nothing delivered, and
    the broker logged at least one TLS refusal meanwhile. Returns a short description."""
    mark = own.log_mark()
    # librdkafka reports the broker connection's own error (_SSL, _TRANSPORT) first, then
    # _ALL_BROKERS_DOWN; the former says why.
    err, secs = _intruder(label, who, cfg, topic,
                          lambda errors: next((e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN),
                                              errors[0] if errors else None))
    broker = own.tls_refusals(mark)
    if not broker:
        fail("%s (%s): the broker logged no TLS refusal (\"TLS handshake failed\")" % (label, who))
    log("%s (%s): broker: %d TLS refusal(s), first: %s" % (label, who, len(broker), broker[0]))
    return "%s after %.1fs (%s); broker: %s" % (err.name(), secs, err.str()[:200], broker[0])
