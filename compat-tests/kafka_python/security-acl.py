#!/usr/bin/env python3
"""kafka-python: ACLs with Kafka's StandardAuthorizer (issue 16, ADR 0014), managed through
KafkaAdminClient.create_acls / describe_acls / delete_acls.

Own broker (lib/broker.py `acl_broker()`: one SASL_PLAINTEXT listener with PLAIN, users
admin, alice and bob, StandardAuthorizer, `super.users=User:admin`).

1. admin (super user) creates the topic (2 partitions).
2. alice, with no ACL: send() fails with TopicAuthorizationFailedError and nothing is
   appended; describe_acls is refused with ClusterAuthorizationFailedError.
3. admin grants alice WRITE and READ on the topic and READ on her group; describe_acls
   lists exactly those three.
4. alice produces 20 records; a group member reads them all and commits; committed()
   reads the commit back.
5. admin adds a DENY of READ for alice on the topic: her consumer gets
   TopicAuthorizationFailedError and no record.
6. admin deletes alice's bindings (four reported); the topic holds exactly her 20
   records (read by admin).
"""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient,
                         NewTopic, ResourcePattern, ResourcePatternFilter, ResourceType)
from kafka.errors import ClusterAuthorizationFailedError, KafkaError, TopicAuthorizationFailedError

import compat
from broker import ACL_USERS, acl_broker
from compat import Deadline, fail, log, passed

own = acl_broker().close_at_verdict().start()
log("own broker (SASL_PLAINTEXT, PLAIN, StandardAuthorizer) on %s, data in %s" % (own.bootstrap, own.dir))
TOPIC = compat.topic()
GROUP = compat.topic("-group")
NPART = 2
COUNT = 20


def sasl(user, **extra):
    cfg = {"bootstrap_servers": own.bootstrap, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
           "sasl_plain_username": user, "sasl_plain_password": ACL_USERS[user]}
    cfg.update(extra)
    return cfg


def acl(op, permission=ACLPermissionType.ALLOW, restype=ResourceType.TOPIC, name=None):
    return ACL("User:alice", "*", op, permission,
               ResourcePattern(restype, name or TOPIC, ACLResourcePatternType.LITERAL))


def alice_filter():
    return ACLFilter("User:alice", None, ACLOperation.ANY, ACLPermissionType.ANY,
                     ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))


def key(a):
    return (a.principal, a.host, a.operation, a.permission_type, a.resource_pattern.resource_type,
            a.resource_pattern.resource_name, a.resource_pattern.pattern_type)


def produce(tag):
    """COUNT records as alice; returns (delivered offsets, error type names)."""
    p = KafkaProducer(**sasl("alice", max_block_ms=10000, request_timeout_ms=10000))
    delivered, errors = [], []
    for i in range(COUNT):
        try:
            md = p.send(TOPIC, key=b"k%d" % i, value=b"%s-%d" % (tag.encode(), i), partition=i % NPART).get(timeout=15)
            delivered.append((md.partition, md.offset))
        except KafkaError as e:
            errors.append(type(e).__name__)
    p.close(timeout=5)
    return delivered, errors


def main():
    admin = KafkaAdminClient(**sasl("admin"))
    admin.create_topics([NewTopic(TOPIC, NPART, 1)])
    log("admin created %s" % TOPIC)

    # 2. alice without ACLs.
    delivered, errors = produce("denied")
    if delivered or set(errors) != {"TopicAuthorizationFailedError"}:
        fail("alice without ACLs: %d delivered, errors %s" % (len(delivered), sorted(set(errors))))
    alice_admin = KafkaAdminClient(**sasl("alice"))
    try:
        acls, err = alice_admin.describe_acls(alice_filter())
        fail("alice listed ACLs without DESCRIBE on the cluster: %s %s" % (acls, err))
    except ClusterAuthorizationFailedError:
        pass
    alice_admin.close()
    log("alice without ACLs: %d sends refused (TopicAuthorizationFailedError), describe_acls refused" % len(errors))

    # 3. grants.
    grants = [acl(ACLOperation.WRITE), acl(ACLOperation.READ),
              acl(ACLOperation.READ, restype=ResourceType.GROUP, name=GROUP)]
    r = admin.create_acls(grants)
    if r["failed"] or len(r["succeeded"]) != len(grants):
        fail("create_acls: %s" % r)
    listed, err = admin.describe_acls(alice_filter())
    if sorted(map(key, listed)) != sorted(map(key, grants)):
        fail("describe_acls for alice: %s, want %s" % (sorted(map(key, listed)), sorted(map(key, grants))))
    log("admin granted %d bindings; describe_acls lists them" % len(grants))

    # 4. produce, group read and commit.
    delivered, errors = produce("alice")
    if errors or len(delivered) != COUNT:
        fail("alice with WRITE: %d delivered, errors %s" % (len(delivered), errors[:3]))
    c = KafkaConsumer(TOPIC, **sasl("alice", group_id=GROUP, enable_auto_commit=False, auto_offset_reset="earliest"))
    got, dl = 0, Deadline(60)
    while got < COUNT:
        if dl.expired():
            fail("alice's group member read %d/%d records in 60 s" % (got, COUNT))
        for recs in c.poll(timeout_ms=500).values():
            got += len(recs)
    c.commit()
    committed = [c.committed(TopicPartition(TOPIC, q)) for q in range(NPART)]
    c.close()
    if committed != [COUNT // NPART] * NPART:
        fail("alice's committed offsets %s, want %d per partition" % (committed, COUNT // NPART))
    log("alice produced %d records, her group read them and committed %s" % (COUNT, committed))

    # 5. DENY READ wins.
    r = admin.create_acls([acl(ACLOperation.READ, ACLPermissionType.DENY)])
    if r["failed"]:
        fail("create_acls (DENY): %s" % r)
    c = KafkaConsumer(**sasl("alice", enable_auto_commit=False, auto_offset_reset="earliest"))
    c.assign([TopicPartition(TOPIC, q) for q in range(NPART)])
    c.seek_to_beginning()
    dl, refused, records = Deadline(30), None, 0
    while refused is None and not dl.expired():
        try:
            for recs in c.poll(timeout_ms=500).values():
                records += len(recs)
        except TopicAuthorizationFailedError as e:
            refused = e
    c.close()
    if refused is None or records:
        fail("alice with a DENY of READ: error %r, %d records (want TopicAuthorizationFailedError, 0)" % (refused, records))
    log("DENY READ: alice's fetch refused (TopicAuthorizationFailedError), 0 records")

    # 6. delete alice's bindings.
    deleted = []
    for _f, matches, err in admin.delete_acls([alice_filter()]):
        deleted += list(matches)
    if len(deleted) != 4:
        fail("delete_acls for alice removed %d bindings, want 4" % len(deleted))
    c = KafkaConsumer(**sasl("admin", enable_auto_commit=False, auto_offset_reset="earliest", consumer_timeout_ms=3000))
    c.assign([TopicPartition(TOPIC, q) for q in range(NPART)])
    c.seek_to_beginning()
    values = sorted(m.value for m in c)
    c.close()
    want = sorted(b"alice-%d" % i for i in range(COUNT))
    if values != want:
        fail("the topic holds %d records, want alice's %d only: %s" % (len(values), COUNT, values[:5]))
    admin.close()
    passed("no ACL: sends refused (TopicAuthorizationFailedError), describe_acls refused; %d bindings created and "
           "described; %d records produced, group read and commit %s; DENY READ wins (0 records); delete_acls "
           "removed 4; the topic holds exactly alice's records" % (len(grants), COUNT, committed))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
