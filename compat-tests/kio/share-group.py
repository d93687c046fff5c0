#!/usr/bin/env python3
"""ShareFetch and ShareAcknowledge v2 (Kafka 4.2: KIP-1206 acquire modes, KIP-1222 RENEW)
through kio, a Python codec generated from Kafka's own message schemas: an independent
encoding of the v2 requests and decoding of the v2 responses, on the wire against the
partition's leader. No share consumer installed here speaks v2 yet (librdkafka 2.16 and
confluent-kafka 2.16.1 send v1; the compat `share-group` cell of confluent_kafka covers
v1), and kafka-protocol 0.18 (the codec cross-check) stops at Kafka 4.1.

1. ApiVersions advertises ShareFetch and ShareAcknowledge up to v2.
2. Record-limit mode (ShareAcquireMode 1): a fetch with MaxRecords 4 acquires exactly
   offsets 0..3 of a 10-record partition, whatever the producer's batches.
3. RENEW: member one renews 0..1 with ShareAcknowledge v2 (IsRenewAck); the response
   carries the lock duration now in force (AcquisitionLockTimeoutMs, new in v2). A
   renewing ShareFetch that also asks for records is INVALID_REQUEST.
4. Member two gets 4..9 at once, then, parked, 2..3 (delivery count 2) when member one's
   first lock runs out; member one still holds 0..1 and accepts them after that.
5. Everything accepted: nothing is left to acquire.
Group configs (GROUP resource) and the records come from confluent-kafka."""

import dataclasses
import datetime
import io
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "confluent_kafka"))

import compat  # noqa: E402
import ck_helpers as ck  # noqa: E402
from compat import Deadline, fail, log, passed  # noqa: E402
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType  # noqa: E402
from kio.schema.api_versions.v3 import request as av_req, response as av_resp  # noqa: E402
from kio.schema.metadata.v12 import request as md_req, response as md_resp  # noqa: E402
from kio.schema.share_acknowledge.v1 import request as ack1_req, response as ack1_resp  # noqa: E402
from kio.schema.share_acknowledge.v2 import request as ack2_req, response as ack2_resp  # noqa: E402
from kio.schema.share_fetch.v2 import request as sf_req, response as sf_resp  # noqa: E402
from kio.serial import entity_reader, entity_writer  # noqa: E402
from kio.static.primitive import i8, i32, i32Timedelta, i64  # noqa: E402

ACCEPT, RENEW = 1, 4
INVALID_REQUEST = 42
GROUP = compat.topic("-kio-share")
topic = compat.topic()


class Conn:
    """One connection, requests encoded and responses decoded by kio."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=60)
        self.cid = 0

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                fail("the broker closed the connection")
            out += chunk
        return out

    def call(self, req, resp_type):
        self.cid += 1
        header_type = req.__header_schema__
        header = header_type(request_api_key=req.__api_key__, request_api_version=req.__version__,
                             correlation_id=i32(self.cid), client_id="strom-compat-kio")
        buf = io.BytesIO()
        entity_writer(header_type)(buf, header)
        entity_writer(type(req))(buf, req)
        frame = buf.getvalue()
        self.s.sendall(struct.pack(">i", len(frame)) + frame)
        body = self._read(struct.unpack(">i", self._read(4))[0])
        head, used = entity_reader(resp_type.__header_schema__)(body, 0)
        if head.correlation_id != self.cid:
            fail("correlation id %d answered for %d" % (head.correlation_id, self.cid))
        resp, size = entity_reader(resp_type)(body, used)
        if used + size != len(body):
            fail("%s: %d bytes left after decoding" % (resp_type.__name__, len(body) - used - size))
        return resp


def set_group_configs(a, configs):
    res = ConfigResource(ResourceType.GROUP, GROUP, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()])
    a.incremental_alter_configs([res])[res].result(timeout=30)


def share_fetch(member, epoch, topic_id, acks=(), mode=0, max_records=100, wait_ms=0, renew=False):
    zero = renew  # KIP-1222: a renewing fetch asks for nothing
    return sf_req.ShareFetchRequest(
        group_id=GROUP, member_id=member, share_session_epoch=i32(epoch),
        max_wait=i32Timedelta.parse(datetime.timedelta(milliseconds=0 if zero else wait_ms)),
        min_bytes=i32(0 if zero else 1), max_bytes=i32(0 if zero else 1 << 20),
        max_records=i32(0 if zero else max_records), batch_size=i32(max_records),
        share_acquire_mode=i8(mode), is_renew_ack=renew,
        topics=(sf_req.FetchTopic(topic_id=topic_id, partitions=(sf_req.FetchPartition(
            partition_index=i32(0),
            acknowledgement_batches=tuple(sf_req.AcknowledgementBatch(
                first_offset=i64(f), last_offset=i64(l), acknowledge_types=(i8(t),)) for f, l, t in acks)),)),),
        forgotten_topics_data=())


def acknowledge(module, member, epoch, topic_id, acks, renew=None):
    extra = {} if renew is None else {"is_renew_ack": renew}
    return module.ShareAcknowledgeRequest(
        group_id=GROUP, member_id=member, share_session_epoch=i32(epoch), **extra,
        topics=(module.AcknowledgeTopic(topic_id=topic_id, partitions=(module.AcknowledgePartition(
            partition_index=i32(0),
            acknowledgement_batches=tuple(module.AcknowledgementBatch(
                first_offset=i64(f), last_offset=i64(l), acknowledge_types=(i8(t),)) for f, l, t in acks)),)),))


def acquired(resp):
    if int(resp.error_code) != 0:
        fail("ShareFetch error %s: %s" % (int(resp.error_code), resp.error_message))
    out = []
    for t in resp.responses:
        for p in t.partitions:
            if int(p.error_code) != 0 or int(p.acknowledge_error_code) != 0:
                fail("partition errors %s/%s: %s %s" % (int(p.error_code), int(p.acknowledge_error_code),
                                                       p.error_message, p.acknowledge_error_message))
            out += [(int(r.first_offset), int(r.last_offset), int(r.delivery_count)) for r in p.acquired_records]
    return out


def ack_error(resp):
    if int(resp.error_code) != 0:
        fail("ShareAcknowledge error %s: %s" % (int(resp.error_code), resp.error_message))
    return int(resp.responses[0].partitions[0].error_code)


a = ck.create_topic(topic, 1)
ck.wait_partitions(a, topic, 1)
set_group_configs(a, {"share.auto.offset.reset": "earliest", "share.record.lock.duration.ms": "3000"})
ck.produce_all(ck.producer(), topic, ({"key": None, "value": b"v%d" % i, "partition": 0} for i in range(10)))

# The partition's leader and the topic id, from kio's Metadata v12.
host, port = compat.bootstrap().split(",")[0].rsplit(":", 1)
boot = Conn(host, int(port))
md = boot.call(md_req.MetadataRequest(topics=(md_req.MetadataRequestTopic(topic_id=None, name=topic),),
                                      allow_auto_topic_creation=False,
                                      include_topic_authorized_operations=False), md_resp.MetadataResponse)
t = md.topics[0]
leader = int(t.partitions[0].leader_id)
b = [x for x in md.brokers if int(x.node_id) == leader][0]
topic_id = t.topic_id

# 1. Versions.
one = Conn(b.host, int(b.port))
av = one.call(av_req.ApiVersionsRequest(client_software_name="strom-compat-kio", client_software_version="0.6.5"),
              av_resp.ApiVersionsResponse)
maxes = {int(k.api_key): int(k.max_version) for k in av.api_keys}
if maxes.get(78, 0) < 2 or maxes.get(79, 0) < 2:
    fail("ShareFetch/ShareAcknowledge advertised up to v%s/v%s, not v2" % (maxes.get(78), maxes.get(79)))
log("ShareFetch v%d and ShareAcknowledge v%d advertised" % (maxes[78], maxes[79]))

# 2. Record-limit mode.
got = acquired(one.call(share_fetch("one", 0, topic_id, mode=1, max_records=4, wait_ms=5000),
                        sf_resp.ShareFetchResponse))
if got != [(0, 3, 1)]:
    fail("record-limit fetch of 4 acquired %s, expected [(0, 3, 1)]" % got)
log("record-limit mode: MaxRecords 4 acquired offsets 0..3")

# 3. Renew 0..1 with a minute-long lock (new locks follow the group config).
set_group_configs(a, {"share.record.lock.duration.ms": "60000"})
r = one.call(acknowledge(ack2_req, "one", 1, topic_id, [(0, 1, RENEW)], renew=True), ack2_resp.ShareAcknowledgeResponse)
if ack_error(r) != 0:
    fail("RENEW refused: %s" % r.responses[0].partitions[0].error_message)
lock = r.acquisition_lock_timeout
lock_ms = lock.total_seconds() * 1000 if hasattr(lock, "total_seconds") else int(lock)
if lock_ms != 60000:
    fail("ShareAcknowledge v2 AcquisitionLockTimeoutMs %r, expected 60000" % lock)
bad = share_fetch("one", 2, topic_id, [(2, 2, RENEW)], renew=True)
bad = dataclasses.replace(bad, max_records=i32(10))
r = one.call(bad, sf_resp.ShareFetchResponse)
if int(r.error_code) != INVALID_REQUEST:
    fail("a renewing ShareFetch asking for records answered %s, expected INVALID_REQUEST" % int(r.error_code))
log("RENEW of 0..1 answered with a 60000-ms lock; a renewing fetch asking for records refused")

# 4. Member two: 4..9 at once, then 2..3 once member one's first lock (3 s) runs out.
two = Conn(b.host, int(b.port))
got = acquired(two.call(share_fetch("two", 0, topic_id, mode=1, max_records=100, wait_ms=5000),
                        sf_resp.ShareFetchResponse))
if got != [(4, 9, 1)]:
    fail("member two's first fetch acquired %s, expected [(4, 9, 1)]" % got)
acquired(two.call(share_fetch("two", 1, topic_id, [(4, 9, ACCEPT)]), sf_resp.ShareFetchResponse))
started = time.monotonic()
dl = Deadline(30)
got = []
epoch = 2
while not got and not dl.expired():
    got = acquired(two.call(share_fetch("two", epoch, topic_id, wait_ms=10000), sf_resp.ShareFetchResponse))
    epoch += 1
if got != [(2, 3, 2)]:
    fail("after member one's first lock ran out member two acquired %s, expected [(2, 3, 2)]" % got)
r = one.call(acknowledge(ack1_req, "one", 2, topic_id, [(0, 1, ACCEPT)]), ack1_resp.ShareAcknowledgeResponse)
if ack_error(r) != 0:
    fail("member one could not accept its renewed records 0..1: %s" % r.responses[0].partitions[0].error_message)
log("member two got 4..9, then 2..3 (count 2) after %.1f s; member one accepted renewed 0..1"
    % (time.monotonic() - started))

# 5. Nothing left.
r = two.call(acknowledge(ack2_req, "two", epoch, topic_id, [(2, 3, ACCEPT)], renew=False),
             ack2_resp.ShareAcknowledgeResponse)
if ack_error(r) != 0:
    fail("member two could not accept 2..3")
left = acquired(two.call(share_fetch("two", epoch + 1, topic_id), sf_resp.ShareFetchResponse))
if left:
    fail("records left after all were accepted: %s" % left)
passed("ShareFetch/ShareAcknowledge v2 through kio: record-limit mode, RENEW, lock duration in v2 responses")
