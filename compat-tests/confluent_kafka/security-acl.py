#!/usr/bin/env python3
"""confluent-kafka (librdkafka): ACLs with Kafka's StandardAuthorizer (issue 16, ADR 0014),
managed through AdminClient.create_acls / describe_acls / delete_acls.

The scenario starts its own broker (lib/broker.py `acl_broker()`: one SASL_PLAINTEXT
listener with PLAIN, users admin, alice and bob, `authorizer.class.name` =
StandardAuthorizer, `super.users=User:admin`).

1. admin (super user, no ACL needed) creates the topic (2 partitions).
2. alice, with no ACL: her records fail with TOPIC_AUTHORIZATION_FAILED and none is
   appended; the topic is missing from her metadata of all topics; create_acls answers
   her CLUSTER_AUTHORIZATION_FAILED and describe_acls lists nothing (the broker refuses
   it with CLUSTER_AUTHORIZATION_FAILED too, which librdkafka drops).
3. admin grants alice WRITE and READ on the topic and READ on her group; describe_acls
   lists exactly those three bindings.
4. alice produces 20 records, a group member reads them all and commits; the commit is
   read back.
5. admin adds a DENY of READ for alice on the topic: deny wins over her ALLOW, her
   consumer gets TOPIC_AUTHORIZATION_FAILED and no record; bob (no ACL) sees no topic.
6. admin deletes alice's bindings (delete_acls reports the four); her produce fails
   again; the topic holds exactly her 20 records (read by admin).
7. The broker logged the denials with alice's principal.
"""

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

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
    cfg = {"bootstrap.servers": own.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
           "sasl.username": user, "sasl.password": ACL_USERS[user]}
    cfg.update(extra)
    return cfg


def binding(op, permission=AclPermissionType.ALLOW, restype=ResourceType.TOPIC, name=None):
    return AclBinding(restype, name or TOPIC, ResourcePatternType.LITERAL, "User:alice", "*", op, permission)


def alice_filter():
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice", None,
                            AclOperation.ANY, AclPermissionType.ANY)


def produce(cfg, tag):
    """COUNT records, record i to partition i % NPART; returns (delivered, [error codes])."""
    p = Producer({**cfg, "linger.ms": 5, "message.timeout.ms": 10000})
    delivered, errors = [], []

    def cb(err, msg):
        if err is not None:
            errors.append(err.code())
        else:
            delivered.append((msg.partition(), msg.offset()))

    for i in range(COUNT):
        p.produce(TOPIC, key=b"k%d" % i, value=b"%s-%d" % (tag.encode(), i), partition=i % NPART, on_delivery=cb)
    left = p.flush(30)
    if left:
        fail("%s: %d records neither delivered nor failed after 30 s" % (tag, left))
    return delivered, errors


def read_all(cfg, what):
    """Every record of the topic from the beginning (assign), until EOF on every partition."""
    c = Consumer({**cfg, "group.id": "strom-compat-unused", "enable.auto.commit": False,
                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(TOPIC, q, OFFSET_BEGINNING) for q in range(NPART)])
    got, eof, dl = [], set(), Deadline(60)
    while eof != set(range(NPART)):
        if dl.expired():
            fail("%s: EOF on %s only after 60 s (%d records)" % (what, sorted(eof), len(got)))
        for m in c.consume(num_messages=100, timeout=0.5):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                fail("%s: consumer error %s" % (what, m.error()))
            got.append(m.value())
    c.close()
    return got


def main():
    admin = AdminClient(sasl("admin"))
    fs = admin.create_topics([NewTopic(TOPIC, NPART, 1)])
    fs[TOPIC].result(30)
    log("admin created %s" % TOPIC)

    # 2. alice without ACLs.
    delivered, errors = produce(sasl("alice"), "denied")
    if delivered or set(errors) != {KafkaError.TOPIC_AUTHORIZATION_FAILED}:
        fail("alice without ACLs: %d delivered, errors %s (want only TOPIC_AUTHORIZATION_FAILED)"
             % (len(delivered), sorted(set(errors))))
    log("alice without ACLs: all %d records refused with TOPIC_AUTHORIZATION_FAILED" % len(errors))
    alice_admin = AdminClient(sasl("alice"))
    md = alice_admin.list_topics(timeout=10)
    if TOPIC in md.topics:
        fail("alice without DESCRIBE sees %s in the metadata of all topics" % TOPIC)
    try:
        for f in alice_admin.create_acls([binding(AclOperation.ALL)]).values():
            f.result(10)
        fail("alice created an ACL without ALTER on the cluster")
    except KafkaException as e:
        if e.args[0].code() != KafkaError.CLUSTER_AUTHORIZATION_FAILED:
            fail("alice's create_acls: %s (want CLUSTER_AUTHORIZATION_FAILED)" % e.args[0])
    # librdkafka drops DescribeAcls' error code (rd_kafka_DescribeAclsResponse_parse
    # returns NO_ERROR whatever the broker said): the refusal reads as an empty list.
    listed = alice_admin.describe_acls(alice_filter()).result(10)
    if listed:
        fail("alice listed ACLs without DESCRIBE on the cluster: %s" % listed)
    log("alice: the topic is hidden from her, create_acls refused with CLUSTER_AUTHORIZATION_FAILED, "
        "describe_acls shows her nothing")

    # 3. admin grants alice WRITE and READ on the topic and READ on her group.
    grants = [binding(AclOperation.WRITE), binding(AclOperation.READ),
              binding(AclOperation.READ, restype=ResourceType.GROUP, name=GROUP)]
    for b, f in admin.create_acls(grants).items():
        f.result(10)
    listed = admin.describe_acls(alice_filter()).result(10)
    if sorted(map(str, listed)) != sorted(map(str, grants)):
        fail("describe_acls for alice: %s, want %s" % (sorted(map(str, listed)), sorted(map(str, grants))))
    log("admin granted %d bindings; describe_acls lists them" % len(grants))

    # 4. alice produces, consumes in a group and commits.
    delivered, errors = produce(sasl("alice"), "alice")
    if errors or len(delivered) != COUNT:
        fail("alice with WRITE: %d delivered, errors %s" % (len(delivered), errors[:3]))
    c = Consumer(sasl("alice", **{"group.id": GROUP, "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    c.subscribe([TOPIC])
    got, dl = [], Deadline(60)
    while len(got) < COUNT:
        if dl.expired():
            fail("alice's group member read %d/%d records in 60 s" % (len(got), COUNT))
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            fail("alice's group member: %s" % m.error())
        got.append(m.value())
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition(TOPIC, q) for q in range(NPART)], timeout=10)
    c.close()
    if sorted(tp.offset for tp in committed) != [COUNT // NPART] * NPART:
        fail("alice's committed offsets %s, want %d per partition" % ([tp.offset for tp in committed], COUNT // NPART))
    log("alice produced %d records, her group read them and committed %s" % (COUNT, [tp.offset for tp in committed]))

    # 5. DENY READ wins over her ALLOW.
    for b, f in admin.create_acls([binding(AclOperation.READ, AclPermissionType.DENY)]).items():
        f.result(10)
    # Her own group (READ on it implies DESCRIBE, which librdkafka's coordinator lookup needs).
    c = Consumer(sasl("alice", **{"group.id": GROUP, "enable.auto.commit": False}))
    c.assign([TopicPartition(TOPIC, q, OFFSET_BEGINNING) for q in range(NPART)])
    dl, seen_error, records = Deadline(30), None, 0
    while seen_error is None and not dl.expired():
        for m in c.consume(num_messages=100, timeout=0.5):
            if m.error() is not None:
                seen_error = m.error().code()
            else:
                records += 1
    c.close()
    if seen_error != KafkaError.TOPIC_AUTHORIZATION_FAILED or records:
        fail("alice with a DENY of READ: error %s, %d records (want TOPIC_AUTHORIZATION_FAILED, 0)"
             % (seen_error, records))
    bob = AdminClient(sasl("bob")).list_topics(timeout=10)
    if TOPIC in bob.topics:
        fail("bob without ACLs sees %s" % TOPIC)
    log("DENY READ: alice's fetch refused with TOPIC_AUTHORIZATION_FAILED, 0 records; bob sees no topic")

    # 6. delete alice's bindings.
    deleted = []
    for f in admin.delete_acls([alice_filter()]).values():
        deleted += f.result(10)
    if len(deleted) != 4:
        fail("delete_acls for alice removed %d bindings, want 4: %s" % (len(deleted), deleted))
    delivered, errors = produce(sasl("alice"), "late")
    if delivered or set(errors) != {KafkaError.TOPIC_AUTHORIZATION_FAILED}:
        fail("alice after delete_acls: %d delivered, errors %s" % (len(delivered), sorted(set(errors))))
    values = read_all(sasl("admin"), "admin's read")
    want = sorted(b"alice-%d" % i for i in range(COUNT))
    if sorted(values) != want:
        fail("the topic holds %d records, want alice's %d only: %s" % (len(values), COUNT, sorted(values)[:5]))

    # 7. the denials are in the broker's log with the principal.
    denials = [line for line in own.log_tail(100000) if "denied" in line and "User:alice" in line]
    if not denials:
        fail("no authorizer denial of User:alice in the broker log")
    passed("no ACL: produce refused (TOPIC_AUTHORIZATION_FAILED), topic hidden, ACL APIs refused; %d bindings "
           "created and described; %d records produced, group read and commit; DENY READ wins (0 records); "
           "delete_acls removed 4; the topic holds exactly alice's %d records; %d denials logged"
           % (len(grants), COUNT, COUNT, len(denials)))


try:
    main()
except SystemExit:
    raise
except BaseException as e:  # noqa: BLE001 - an unexpected error is a failure (and stops the broker)
    import traceback
    traceback.print_exc()
    fail("unexpected error: %r" % (e,))
fail("scenario ended without a verdict")
