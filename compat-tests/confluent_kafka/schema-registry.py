#!/usr/bin/env python3
"""confluent-kafka's Schema Registry client and serdes against Strom's built-in registry
(issue 18, ADR 0015), with nothing changed but the URL; broker-side validation and the
dead-letter topic.

The scenario starts its own broker with `strom.schema.registry.listener` on a free port.

1. Avro: AvroSerializer auto-registers `<topic>-value` and 10 records round-trip through
   AvroDeserializer. Evolution under the default BACKWARD level: a field added with a
   default registers as version 2; a field added without one, and a type change, are
   refused (HTTP 409) and test_compatibility says False; after set_compatibility(NONE)
   the same change registers.
2. JSON Schema and Protobuf serdes round-trip 10 records each (their subjects get
   schemaType JSON / PROTOBUF).
3. Validation: a topic with confluent.value.schema.validation=true refuses a record
   without the magic byte, with an unknown id, and with the id of another subject
   (INVALID_RECORD, nothing appended) and takes the serializer's records.
4. Dead letters: with strom.dlq.topic set, one producer batch mixing 5 valid and 5
   invalid records is acknowledged whole; the topic holds the 5 valid ones, the
   dead-letter topic the 5 invalid ones with strom.dlq.* headers saying why.
5. The broker is restarted: subjects, versions and ids are as before, a new schema gets
   the next id, and records written before still deserialize.
6. Malformed REST input gets Confluent's status and error_code: bad JSON 400/400, an
   invalid schema 422/42201, an unknown subject 404/40401, an unknown id 404/40403, an
   oversized body 413.
"""

import json
import struct
import urllib.error
import urllib.request

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from confluent_kafka.serialization import MessageField, SerializationContext

import compat
from broker import registry_broker
from compat import Deadline, fail, log, passed

own = registry_broker().close_at_verdict().start()
URL = own.registry_url
log("own broker on %s, registry %s, data in %s" % (own.bootstrap, URL, own.dir))
BASE = compat.topic()
N = 10

USER_V1 = {"type": "record", "name": "User", "namespace": "compat",
           "fields": [{"name": "name", "type": "string"}, {"name": "n", "type": "int"}]}
USER_V2 = dict(USER_V1, fields=USER_V1["fields"] + [{"name": "email", "type": ["null", "string"], "default": None}])
USER_BAD = dict(USER_V1, fields=USER_V1["fields"] + [{"name": "age", "type": "int"}])


ADMIN = AdminClient({"bootstrap.servers": own.bootstrap})


def create(topic, config=None, partitions=1):
    fs = ADMIN.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
                               operation_timeout=20)
    for t, f in fs.items():
        f.result(timeout=30)


def produce(topic, values, conf=None):
    """Produces raw values in one batch; returns the delivery errors (None = ok) in order."""
    p = Producer(dict({"bootstrap.servers": own.bootstrap, "linger.ms": 200, "retries": 0}, **(conf or {})))
    out = [None] * len(values)
    done = [0]

    def cb(i):
        def f(err, msg):
            out[i] = err
            done[0] += 1
        return f
    for i, v in enumerate(values):
        p.produce(topic, value=v, callback=cb(i))
    p.flush(30)
    if done[0] != len(values):
        fail("%s: %d of %d deliveries reported" % (topic, done[0], len(values)))
    return out


def consume(topic, expect, timeout=30):
    c = Consumer({"bootstrap.servers": own.bootstrap, "group.id": topic + "-g", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    msgs, dl = [], Deadline(timeout)
    while len(msgs) < expect and not dl.expired():
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            fail("%s: consume error %s" % (topic, m.error()))
        msgs.append(m)
    # Nothing more may arrive.
    extra = c.poll(1.0)
    c.close()
    if len(msgs) != expect or (extra is not None and not extra.error()):
        fail("%s: expected %d records, got %d%s" % (topic, expect, len(msgs), " and more" if extra else ""))
    return msgs


def rest(method, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(URL + path, data=data, method=method,
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


sr = SchemaRegistryClient({"url": URL})

# 1. Avro round trip and evolution.
avro_topic = BASE + "-avro"
create(avro_topic)
ser1 = AvroSerializer(sr, json.dumps(USER_V1))
ctx = SerializationContext(avro_topic, MessageField.VALUE)
values = [ser1({"name": "u%d" % i, "n": i}, ctx) for i in range(N)]
errs = produce(avro_topic, values)
if any(errs):
    fail("avro produce: %s" % errs)
de = AvroDeserializer(sr)
got = [de(m.value(), ctx) for m in consume(avro_topic, N)]
if got != [{"name": "u%d" % i, "n": i} for i in range(N)]:
    fail("avro round trip: %s" % got[:3])
subject = avro_topic + "-value"
v1 = sr.get_latest_version(subject)
if v1.version != 1 or v1.schema.schema_type != "AVRO":
    fail("after the first record: %s" % v1)
id2 = sr.register_schema(subject, Schema(json.dumps(USER_V2), "AVRO"))
latest = SchemaRegistryClient({"url": URL}).get_latest_version(subject)  # the client caches "latest"
if id2 == v1.schema_id or latest.version != 2 or latest.schema_id != id2:
    fail("compatible evolution: id %s, latest %s" % (id2, latest))
if sr.test_compatibility(subject, Schema(json.dumps(USER_BAD), "AVRO")):
    fail("a field without default passed test_compatibility under BACKWARD")
try:
    sr.register_schema(subject, Schema(json.dumps(USER_BAD), "AVRO"))
    fail("an incompatible schema registered")
except SchemaRegistryError as e:
    if e.http_status_code != 409:
        fail("incompatible register: HTTP %s (%s)" % (e.http_status_code, e))
    log("incompatible schema refused: %s" % e.error_message[:120])
sr.set_compatibility(subject, "NONE")
if sr.get_compatibility(subject) != "NONE":
    fail("per-subject compatibility not NONE")
id3 = sr.register_schema(subject, Schema(json.dumps(USER_BAD), "AVRO"))
if sr.get_versions(subject) != [1, 2, 3]:
    fail("versions after NONE: %s" % sr.get_versions(subject))
log("avro: %d records round-tripped, versions 1-3 with ids %s, %s, %s" % (N, v1.schema_id, id2, id3))

# 2. JSON Schema and Protobuf round trips.
json_topic = BASE + "-json"
create(json_topic)
JSON_SCHEMA = json.dumps({"title": "Order", "type": "object", "additionalProperties": False,
                          "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
                          "required": ["id"]})
jctx = SerializationContext(json_topic, MessageField.VALUE)
jser = JSONSerializer(JSON_SCHEMA, sr)
errs = produce(json_topic, [jser({"id": i, "item": "i%d" % i}, jctx) for i in range(N)])
if any(errs):
    fail("json produce: %s" % errs)
jde = JSONDeserializer(JSON_SCHEMA, schema_registry_client=sr)
got = [jde(m.value(), jctx) for m in consume(json_topic, N)]
if got != [{"id": i, "item": "i%d" % i} for i in range(N)]:
    fail("json round trip: %s" % got[:3])
jv = sr.get_latest_version(json_topic + "-value")
if jv.schema.schema_type != "JSON":
    fail("json subject: %s" % jv)
try:
    jser({"id": "not a number"}, jctx)
    fail("the JSON serializer accepted an invalid object")
except Exception as e:  # SerializationError from the client's own validation
    log("json: invalid object refused client-side: %s" % type(e).__name__)

fdp = descriptor_pb2.FileDescriptorProto(name="compat/order.proto", package="compat", syntax="proto3")
msg = fdp.message_type.add(name="Order")
F = descriptor_pb2.FieldDescriptorProto
msg.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
msg.field.add(name="item", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
Order = message_factory.GetMessageClass(pool.FindMessageTypeByName("compat.Order"))
proto_topic = BASE + "-proto"
create(proto_topic)
pctx = SerializationContext(proto_topic, MessageField.VALUE)
pser = ProtobufSerializer(Order, sr)
errs = produce(proto_topic, [pser(Order(id=i, item="p%d" % i), pctx) for i in range(N)])
if any(errs):
    fail("protobuf produce: %s" % errs)
pde = ProtobufDeserializer(Order)
got = [pde(m.value(), pctx) for m in consume(proto_topic, N)]
if [(o.id, o.item) for o in got] != [(i, "p%d" % i) for i in range(N)]:
    fail("protobuf round trip: %s" % got[:3])
pv = sr.get_latest_version(proto_topic + "-value")
if pv.schema.schema_type != "PROTOBUF":
    fail("protobuf subject: %s" % pv)
log("json and protobuf: %d records each round-tripped (ids %d, %d)" % (N, jv.schema_id, pv.schema_id))

# 3. Validation (the serializer's id, and three kinds of bad records).
val_topic = BASE + "-validated"
create(val_topic, {"confluent.value.schema.validation": "true"})
vctx = SerializationContext(val_topic, MessageField.VALUE)
good = AvroSerializer(sr, json.dumps(USER_V1))({"name": "ok", "n": 1}, vctx)
good_id = struct.unpack(">I", good[1:5])[0]
other_id = id3  # registered under the avro topic's subject only
bad = {"no magic byte": b"plain text",
       "unknown id": b"\x00" + struct.pack(">I", 999999) + good[5:],
       "another subject's id": b"\x00" + struct.pack(">I", other_id) + good[5:]}
for what, v in bad.items():
    errs = produce(val_topic, [v])
    if errs[0] is None or errs[0].code() != KafkaError.INVALID_RECORD:
        fail("validation, %s: delivery %s, want INVALID_RECORD" % (what, errs[0]))
    log("validation refused %s: %s" % (what, errs[0].str()))
errs = produce(val_topic, [good] * 3)
if any(errs):
    fail("validated topic refused the serializer's records: %s" % errs)
consume(val_topic, 3)

# 4. Dead letters: one batch of valid and invalid records.
dlq_topic, dead_topic = BASE + "-routed", BASE + "-dlq"
create(dead_topic)
create(dlq_topic, {"confluent.value.schema.validation": "true", "strom.dlq.topic": dead_topic})
dctx = SerializationContext(dlq_topic, MessageField.VALUE)
dser = AvroSerializer(sr, json.dumps(USER_V1))
mixed = []
for i in range(N):
    mixed.append(dser({"name": "d%d" % i, "n": i}, dctx) if i % 2 == 0 else b"not framed %d" % i)
errs = produce(dlq_topic, mixed)
if any(errs):
    fail("dead-letter topic: the mixed batch was not acknowledged whole: %s" % errs)
kept = consume(dlq_topic, N // 2)
names = [AvroDeserializer(sr)(m.value(), dctx)["name"] for m in kept]
if names != ["d%d" % i for i in range(0, N, 2)]:
    fail("records kept: %s" % names)
if [m.offset() for m in kept] != list(range(0, N, 2)):
    fail("the kept records' offsets: %s (the dead records' offsets stay gaps)" % [m.offset() for m in kept])
dead = consume(dead_topic, N // 2)
for m in dead:
    h = dict(m.headers() or [])
    if h.get("strom.dlq.topic") != dlq_topic.encode() or b"magic byte" not in h.get("strom.dlq.error", b""):
        fail("dead letter headers: %s" % h)
if [m.value() for m in dead] != [b"not framed %d" % i for i in range(1, N, 2)]:
    fail("dead letters: %s" % [m.value() for m in dead])
log("dead letters: %d kept (offsets %s), %d routed with headers %s"
    % (len(kept), [m.offset() for m in kept], len(dead), sorted(dict(dead[0].headers()).keys())))

# 5. Restart: the registry is rebuilt from _schemas.
before = {s: sr.get_versions(s) for s in sr.get_subjects()}
own.restart()
sr2 = SchemaRegistryClient({"url": URL})
after = {s: sr2.get_versions(s) for s in sr2.get_subjects()}
if after != before:
    fail("registry after restart: %s, before %s" % (after, before))
if sr2.get_schema(id2).schema_str != json.dumps(USER_V2):
    fail("schema %d after restart: %s" % (id2, sr2.get_schema(id2).schema_str))
nid = sr2.register_schema(BASE + "-new-value", Schema(json.dumps({"type": "string"}), "AVRO"))
if nid <= max(id2, id3, good_id):
    fail("a new schema after restart got id %d (ids up to %d exist)" % (nid, max(id2, id3, good_id)))
got = [AvroDeserializer(sr2)(m.value(), ctx) for m in consume(avro_topic, N)]
if len(got) != N:
    fail("records after restart")
log("restart: %d subjects as before, next id %d" % (len(after), nid))

# 6. Malformed REST input.
checks = [
    ("bad JSON", "POST", "/subjects/x/versions", None, b"{not json", 400, 400),
    ("invalid schema", "POST", "/subjects/x/versions", {"schema": "{\"type\": \"nope\"}"}, None, 422, 42201),
    ("unknown subject", "GET", "/subjects/no-such-subject/versions", None, None, 404, 40401),
    ("unknown id", "GET", "/schemas/ids/424242", None, None, 404, 40403),
    ("invalid level", "PUT", "/config", {"compatibility": "SIDEWAYS"}, None, 422, 42203),
    ("oversized body", "POST", "/subjects/x/versions", None, b" " * (17 << 20), 413, 413),
]
for what, method, path, body, raw, status, code in checks:
    try:
        got_status, got_body = rest(method, path, body, raw)
    except (urllib.error.URLError, ConnectionError) as e:
        if status == 413:  # the broker may answer and close before the whole body is sent
            log("%s: connection closed early (%s)" % (what, e))
            continue
        raise
    if got_status != status or (got_body or {}).get("error_code") != code:
        fail("%s: HTTP %s %s, want %s/%s" % (what, got_status, got_body, status, code))
log("malformed REST input answered with Confluent's codes")
passed("avro round trip and evolution, validation, dead letters, restart, REST errors")
