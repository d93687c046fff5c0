package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/Shopify/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
	"github.com/segmentio/kafka-go/lz4"
	"github.com/segmentio/kafka-go/snappy"

	c "stromcompat/gocompat"
)

// produceOrSeed writes recs with kafka-go; if the broker refuses that, it records the
// problem and seeds the same records (same partitions) with Sarama so that the
// kafka-go consumer is still exercised. Returns whether kafka-go wrote them.
func produceOrSeed(p *problems, topic string, recs []c.Rec, codec kafka.CompressionCodec, bal kafka.Balancer,
	seedCodec sarama.CompressionCodec) bool {
	c.Log("producing %d records to %s with kafka-go", len(recs), topic)
	if err := writeAll(topic, recs, codec, bal); err != nil {
		p.add("%v", err)
		c.Log("seeding the same records with Sarama to exercise kafka-go's consumer")
		seed(topic, recs, seedCodec)
		return false
	}
	return true
}

func expectFrom(recs []c.Rec, firstOffset int64) []c.Rec {
	out := make([]c.Rec, len(recs))
	for i, r := range recs {
		out[i] = c.Rec{Partition: r.Partition, Offset: firstOffset + int64(i), Key: r.Key, Value: r.Value, TS: r.TS}
	}
	return out
}

func stripTS(recs []c.Rec) []c.Rec {
	out := make([]c.Rec, len(recs))
	for i, r := range recs {
		r.TS = 0
		out[i] = r
	}
	return out
}

// checkRead reads partition p from `from` and compares with exp (offsets included).
// A read that fails (rather than differs) ends the cell: the other partitions would
// fail the same way.
func checkRead(p *problems, topic string, partition int, from int64, exp []c.Rec, maxBytes int, withTS bool) {
	got, err := readPartition(topic, partition, from, len(exp), maxBytes)
	if err != "" {
		p.add("%s", err)
		p.verdict("")
	}
	if !withTS {
		got, exp = stripTS(got), stripTS(exp)
	}
	if d := c.FirstDiff(exp, got, fmt.Sprintf("record of partition %d", partition)); d != "" {
		p.add("%s", d)
	}
}

func checkWatermarks(p *problems, topic string, partition int, want [2]int64) {
	wm, err := watermarks(topic, partition)
	if err != nil {
		p.add("Conn.ReadOffsets (ListOffsets v1) of partition %d: %v", partition, err)
	} else if wm != want {
		p.add("partition %d (first, last) offsets: expected %v, got %v", partition, want, wm)
	}
}

// produce-consume-auto: 10,000 binary-ish records with distinct keys to a new topic
// (auto-created by the Writer's metadata lookup); read back from the beginning with
// a partition Reader; offsets 0..n-1; first/last offsets.
func produceConsumeAuto() {
	var p problems
	topic := c.Topic("")
	data := c.AutoDataset(c.NMessages(), 20240601)
	produceOrSeed(&p, topic, data, nil, nil, sarama.CompressionNone)
	waitTopic(topic, 1)
	checkRead(&p, topic, 0, kafka.FirstOffset, expectFrom(data, 0), 1<<20, false)
	checkWatermarks(&p, topic, 0, [2]int64{0, int64(len(data))})
	p.verdict("%d messages byte-identical, offsets contiguous, first/last offsets ok", len(data))
}

// kafkaGoHash is kafka-go 0.2.1's Hash balancer: FNV-1a of the key, int (64-bit)
// modulo the partition count. (Sarama's hash partitioner takes int32, so the two
// disagree for hashes >= 2^31.)
func kafkaGoHash(key []byte, n int) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(int(h.Sum32()) % n)
}

// produce-consume-explicit: Conn.CreateTopics with 4 partitions (CreateTopics v0);
// 10,000 records over 1,000 keys with kafka-go's Hash balancer; every partition read
// back: each record exactly once, in produce order, offsets contiguous from 0.
func produceConsumeExplicit() {
	const npart = 4
	var p problems
	topic := c.Topic("")
	conn, err := kafka.Dial("tcp", addrs()[0])
	if err != nil {
		c.Fail("kafka.Dial: %v", err)
	}
	c.Log("creating %s with %d partitions (Conn.CreateTopics)", topic, npart)
	err = conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: npart, ReplicationFactor: 1})
	conn.Close()
	if err != nil {
		p.add("Conn.CreateTopics (CreateTopics v0) failed: %v", err)
		c.Log("creating the topic with Sarama instead")
		setupTopic(topic, npart, nil)
	}
	waitTopic(topic, npart)
	data := c.KeyedDataset(c.NMessages(), 1000, 4242)
	for i := range data {
		data[i].Partition = kafkaGoHash(data[i].Key, npart)
	}
	produceOrSeed(&p, topic, data, nil, &kafka.Hash{}, sarama.CompressionNone)
	per := map[int32][]c.Rec{}
	for _, r := range data {
		per[r.Partition] = append(per[r.Partition], r)
	}
	for q := 0; q < npart; q++ {
		if len(per[int32(q)]) == 0 {
			c.Fail("keys did not spread: partition %d gets no records", q)
		}
		checkRead(&p, topic, q, kafka.FirstOffset, expectFrom(per[int32(q)], 0), 1<<20, false)
		checkWatermarks(&p, topic, q, [2]int64{0, int64(len(per[int32(q)]))})
	}
	p.verdict("%d messages over %d partitions (%d, %d, %d, %d), exactly once, in order", len(data), npart,
		len(per[0]), len(per[1]), len(per[2]), len(per[3]))
}

// large-messages: 8 records of exactly 1 MiB into a topic with
// max.message.bytes=4194304 (created with Sarama). Fetch v2 predates KIP-74 (a first
// batch larger than the fetch limit is returned whole only from Fetch v3), so the
// Reader's MaxBytes is raised to 4 MiB.
func largeMessages() {
	var p problems
	topic := c.Topic("")
	setupTopic(topic, 1, map[string]string{"max.message.bytes": "4194304"})
	data := c.LargeDataset()
	produceOrSeed(&p, topic, data, nil, nil, sarama.CompressionNone)
	checkRead(&p, topic, 0, 0, expectFrom(data, 0), 4<<20, false)
	p.verdict("%d records of 1 MiB byte-identical at offsets 0..%d", len(data), len(data)-1)
}

// compression: for none and each codec kafka-go 0.2.1 has (gzip, snappy, lz4; no
// zstd), 1,000 compressible records produced with it and read back exactly. The first
// codec that fails decides the verdict.
func compression() {
	codecs := []struct {
		name  string
		kg    kafka.CompressionCodec
		seedC sarama.CompressionCodec
	}{
		{"none", nil, sarama.CompressionNone},
		{"gzip", gzip.NewCompressionCodec(), sarama.CompressionGZIP},
		{"snappy", snappy.NewCompressionCodec(), sarama.CompressionSnappy},
		{"lz4", lz4.NewCompressionCodec(), sarama.CompressionLZ4},
	}
	data := c.CompressibleDataset(1000)
	var done []string
	for _, codec := range codecs {
		var p problems
		topic := c.Topic("-" + codec.name)
		setupTopic(topic, 1, nil)
		produceOrSeed(&p, topic, data, codec.kg, nil, codec.seedC)
		checkRead(&p, topic, 0, 0, expectFrom(data, 0), 1<<20, false)
		if len(p) > 0 {
			c.Fail("%s: %s", codec.name, strings.Join(p, "; "))
		}
		done = append(done, codec.name)
	}
	c.Pass("%s: 1000 records each round-trip exactly (no zstd in kafka-go 0.2.1)", strings.Join(done, ", "))
}

// seek-timestamp: 100 records with CreateTime T0 + 1000*i; Conn.ReadOffset(time)
// (ListOffsets v1) for T0+41.5 s and T0+42 s gives 42; a Reader set to 42 reads
// 42..99 with exact timestamps. Not seeded with Sarama when kafka-go's producer is
// refused: Sarama 1.22.1 batches carry MaxTimestamp -1, which Strom keeps (see the
// sarama seek-timestamp cell), so the ListOffsets answer would not be kafka-go's.
func seekTimestamp() {
	var p problems
	topic := c.Topic("")
	setupTopic(topic, 1, nil)
	t0 := c.SeekBase()
	data := c.SeekDataset(t0)
	if err := writeAll(topic, data, nil, nil); err != nil {
		c.Fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", addrs()[0], topic, 0)
	if err != nil {
		c.Fail("DialLeader: %v", err)
	}
	for _, ts := range []int64{t0 + 41500, t0 + 42000} {
		off, err := conn.ReadOffset(msTime(ts))
		if err != nil || off != 42 {
			p.add("Conn.ReadOffset(T0+%d ms) = %d, %v; expected 42", ts-t0, off, err)
		}
	}
	after, err := conn.ReadOffset(msTime(t0 + 100*1000 + 1))
	conn.Close()
	if err != nil || after != -1 {
		p.add("Conn.ReadOffset(after the last record) = %d, %v; expected -1", after, err)
	}
	checkRead(&p, topic, 0, 42, expectFrom(data[42:], 42), 1<<20, true)
	p.verdict("offsets for T0+41.5s and T0+42s = 42, after the end -1; reader from 42 read 42..99 with exact timestamps")
}

// metadata: a 3-partition topic (created with Sarama) is listed by Conn.ReadPartitions
// (Metadata v1) with 3 partitions led by a broker with an address; a topic
// auto-created the kafka-go way (DialLeader on a new topic: its Metadata v1 request
// auto-creates it) has 1 partition. (All-topics metadata cannot be requested: see below.)
func metadata() {
	var p problems
	topic := c.Topic("-created")
	auto := c.Topic("-auto")
	setupTopic(topic, 3, nil)
	parts := waitTopic(topic, 3)
	for _, q := range parts {
		if q.Leader.ID < 0 || q.Leader.Host == "" || q.Leader.Port <= 0 {
			p.add("partition %d leader %+v has no address", q.ID, q.Leader)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", addrs()[0], auto, 0)
	if err != nil {
		p.add("DialLeader on the new topic %s (auto-create through Metadata v1): %v", auto, err)
	} else {
		conn.Close()
		waitTopic(auto, 1)
	}
	// kafka-go 0.2.1's ReadPartitions() (documented as "all partitions of the cluster")
	// sends an empty topic array, which Metadata v1 defines as "no topics" (null means
	// all): Kafka answers with no topics, and so must Strom. All-topics metadata cannot
	// be asked for through kafka-go 0.2.1.
	conn, err = kafka.Dial("tcp", addrs()[0])
	if err != nil {
		c.Fail("Dial: %v", err)
	}
	all, err := conn.ReadPartitions()
	conn.Close()
	if err != nil {
		p.add("ReadPartitions() (Metadata v1, empty topic array): %v", err)
	} else if len(all) != 0 {
		p.add("ReadPartitions() sends Metadata v1 with an empty topic array (= no topics), got %d partitions; Kafka answers none", len(all))
	}
	p.verdict("created topic has 3 partitions, auto-created topic 1, leader %s:%d (all-topics metadata not expressible: "+
		"ReadPartitions() sends an empty topic list, answered with no topics as on Kafka)", parts[0].Leader.Host, parts[0].Leader.Port)
}
