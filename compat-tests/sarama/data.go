package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/Shopify/sarama"

	c "stromcompat/gocompat"
)

// produce-consume-auto: 10,000 binary-ish records with distinct keys to a new
// auto-created topic; consumed from the beginning byte-identical, offsets 0..n-1,
// produce-reported offsets and earliest/latest offsets agree.
func produceConsumeAuto() {
	topic := c.Topic("")
	data := c.AutoDataset(c.NMessages(), 20240601)
	c.Log("producing %d messages to new topic %s (auto-create)", len(data), topic)
	reports := produceAll(newConfig("compat-sarama"), topic, data, false)
	offs := make([]int64, len(reports))
	for i, r := range reports {
		if r.Partition != 0 {
			c.Fail("message %d delivered to partition %d; the auto-created topic should have 1 partition", i, r.Partition)
		}
		offs[i] = r.Offset
	}
	if d := c.FirstDiffInts(c.Range(0, int64(len(data))), offs, "produce-reported offset"); d != "" {
		c.Fail("%s", d)
	}
	cl := newClient(newConfig("compat-sarama"))
	defer cl.Close()
	waitPartitions(cl, topic, 1)
	got := consume(cl, topic, map[int32]int64{0: sarama.OffsetOldest}, len(data), 120*time.Second)[0]
	exp := make([]c.Rec, len(data))
	for i, r := range data {
		exp[i] = c.Rec{Offset: int64(i), Key: r.Key, Value: r.Value}
	}
	if d := c.FirstDiff(exp, strip(got, false, false), "message"); d != "" {
		c.Fail("%s", d)
	}
	if wm := watermarks(cl, topic, 0); wm != [2]int64{0, int64(len(data))} {
		c.Fail("(earliest, latest) offsets of partition 0: expected (0, %d), got %v", len(data), wm)
	}
	c.Pass("%d messages byte-identical, offsets contiguous, watermarks ok", len(data))
}

// strip keeps only what a scenario compares: offset, key, value (and partition /
// timestamp+headers when asked).
func strip(recs []c.Rec, partition, tsHeaders bool) []c.Rec {
	out := make([]c.Rec, len(recs))
	for i, r := range recs {
		out[i] = c.Rec{Offset: r.Offset, Key: r.Key, Value: r.Value}
		if partition {
			out[i].Partition = r.Partition
		}
		if tsHeaders {
			out[i].TS, out[i].Headers = r.TS, r.Headers
		}
	}
	return out
}

// produce-consume-explicit: CreateTopics with 4 partitions; 10,000 records over 1,000
// keys with Sarama's default partitioner (FNV-1a hash); every partition consumed:
// each record exactly once, per-partition produce order, consumed offset = reported.
func produceConsumeExplicit() {
	const npart = 4
	topic := c.Topic("")
	data := c.KeyedDataset(c.NMessages(), 1000, 4242)
	c.Log("creating %s with %d partitions", topic, npart)
	createTopic(topic, npart, nil)
	c.Log("producing %d keyed messages", len(data))
	reports := produceAll(newConfig("compat-sarama"), topic, data, false)
	exp := c.ExpectedByPartition(data, reports, npart)
	cl := newClient(newConfig("compat-sarama"))
	defer cl.Close()
	checkAllPartitions(cl, topic, npart, exp, len(data))
	waitPartitions(cl, topic, npart)
	counts := make([]string, npart)
	for q := int32(0); q < npart; q++ {
		counts[q] = fmt.Sprint(len(exp[q]))
	}
	c.Pass("%d messages over %d partitions (%s), exactly once, in order", len(data), npart, strings.Join(counts, ", "))
}

// headers-timestamps: 300 records with headers (none, duplicates in order, empty,
// binary, non-ASCII names, a null value) and explicit non-monotonic CreateTime
// timestamps round-trip exactly.
func headersTimestamps() {
	topic := c.Topic("")
	recs := c.HeadersDataset(300, true, 1600000000000)
	c.Log("producing %d records with headers/timestamps to %s (partition 0)", len(recs), topic)
	produceAll(newConfig("compat-sarama"), topic, recs, true)
	cl := newClient(newConfig("compat-sarama"))
	defer cl.Close()
	waitPartitions(cl, topic, 1)
	got := consume(cl, topic, map[int32]int64{0: sarama.OffsetOldest}, len(recs), 60*time.Second)[0]
	exp := make([]c.Rec, len(recs))
	for i, r := range recs {
		exp[i] = c.Rec{Offset: int64(i), Key: r.Key, Value: r.Value, TS: r.TS, Headers: r.Headers}
	}
	if d := c.FirstDiff(exp, strip(got, false, true), "record (offset, key, value, timestamp, headers)"); d != "" {
		c.Fail("%s", d)
	}
	c.Pass("%d records: headers (incl. a null value) and CreateTime timestamps identical", len(recs))
}

// large-messages: 8 records of exactly 1 MiB (random) into a topic with
// max.message.bytes=4194304, producer allowed 4 MiB; consumed from offset 0 with
// Sarama's default fetch size (Consumer.Fetch.Default = 1 MiB) and compared exactly.
func largeMessages() {
	topic := c.Topic("")
	createTopic(topic, 1, map[string]string{"max.message.bytes": "4194304"})
	data := c.LargeDataset()
	cfg := newConfig("compat-sarama")
	cfg.Producer.MaxMessageBytes = 4 << 20
	c.Log("producing %d records of %d bytes", len(data), c.LargeValueSize)
	reports := produceAll(cfg, topic, data, false)
	for i, r := range reports {
		if r != (c.Report{Partition: 0, Offset: int64(i)}) {
			c.Fail("record %d reported at partition %d offset %d, expected 0/%d", i, r.Partition, r.Offset, i)
		}
	}
	cl := newClient(newConfig("compat-sarama"))
	defer cl.Close()
	got := consume(cl, topic, map[int32]int64{0: 0}, len(data), 60*time.Second)[0]
	exp := make([]c.Rec, len(data))
	for i, r := range data {
		exp[i] = c.Rec{Offset: int64(i), Key: r.Key, Value: r.Value}
	}
	if d := c.FirstDiff(exp, strip(got, false, false), "record"); d != "" {
		c.Fail("%s", d)
	}
	c.Pass("%d records of 1 MiB byte-identical at offsets 0..%d (default fetch size %d)", len(data), len(data)-1,
		cfg.Consumer.Fetch.Default)
}

// compression: per codec, 1,000 compressible keyed records produced with it into
// $COMPAT_TOPIC-<codec> and read back exactly. zstd: Sarama 1.22.1 sends it in
// Produce v3, and Kafka accepts zstd only from Produce v7 (answering
// UNSUPPORTED_COMPRESSION_TYPE); the cell checks the broker answers exactly that.
func compression() {
	codecs := []struct {
		name string
		c    sarama.CompressionCodec
	}{{"none", sarama.CompressionNone}, {"gzip", sarama.CompressionGZIP}, {"snappy", sarama.CompressionSnappy},
		{"lz4", sarama.CompressionLZ4}}
	data := c.CompressibleDataset(1000)
	exp := make([]c.Rec, len(data))
	for i, r := range data {
		exp[i] = c.Rec{Offset: int64(i), Key: r.Key, Value: r.Value}
	}
	var done []string
	for _, codec := range codecs {
		topic := c.Topic("-" + codec.name)
		createTopic(topic, 1, nil)
		cfg := newConfig("compat-sarama")
		cfg.Producer.Compression = codec.c
		c.Log("%s: producing %d records", codec.name, len(data))
		reports := produceAll(cfg, topic, data, false)
		for i, r := range reports {
			if r != (c.Report{Partition: 0, Offset: int64(i)}) {
				c.Fail("%s: record %d reported at partition %d offset %d", codec.name, i, r.Partition, r.Offset)
			}
		}
		cl := newClient(newConfig("compat-sarama"))
		got := consume(cl, topic, map[int32]int64{0: sarama.OffsetOldest}, len(data), 60*time.Second)[0]
		cl.Close()
		if d := c.FirstDiff(exp, strip(got, false, false), codec.name+" record"); d != "" {
			c.Fail("%s", d)
		}
		done = append(done, codec.name)
	}

	topic := c.Topic("-zstd")
	createTopic(topic, 1, nil)
	cfg := newConfig("compat-sarama")
	cfg.Producer.Compression = sarama.CompressionZSTD
	cfg.Producer.Retry.Max = 0
	_, errs := produceAllErr(cfg, topic, data[:10], false)
	if len(errs) != 10 {
		c.Fail("zstd in Produce v3: %d of 10 records accepted; Kafka refuses zstd below Produce v7 (UNSUPPORTED_COMPRESSION_TYPE)", 10-len(errs))
	}
	if errs[0].Err != sarama.ErrUnsupportedCompressionType {
		c.Fail("zstd in Produce v3 refused with %v, expected UNSUPPORTED_COMPRESSION_TYPE", errs[0].Err)
	}
	c.Pass("%s: 1000 records each round-trip exactly; zstd refused with UNSUPPORTED_COMPRESSION_TYPE as on Kafka "+
		"(Sarama 1.22.1 sends zstd in Produce v3, Kafka needs v7)", strings.Join(done, ", "))
}

// seek-timestamp: 100 records with CreateTime T0 + 1000*i; ListOffsets by time
// (Client.GetOffset, ListOffsets v1) for T0+41500 and T0+42000 gives 42, after the
// last record -1; a consumer started at 42 reads 42..99 with exact timestamps.
func seekTimestamp() {
	topic := c.Topic("")
	createTopic(topic, 1, nil)
	t0 := c.SeekBase()
	data := c.SeekDataset(t0)
	produceAll(newConfig("compat-sarama"), topic, data, false)
	cl := newClient(newConfig("compat-sarama"))
	defer cl.Close()
	for _, ts := range []int64{t0 + 42000 - 500, t0 + 42000} {
		off, err := cl.GetOffset(topic, 0, ts)
		if err != nil {
			c.Fail("GetOffset(time %d): %v", ts, err)
		}
		if off != 42 {
			c.Fail("GetOffset(T0+%d ms) = %d, expected 42", ts-t0, off)
		}
	}
	after, err := cl.GetOffset(topic, 0, t0+100*1000+1)
	if err != nil {
		c.Fail("GetOffset(after the last record): %v", err)
	}
	if after != -1 {
		c.Fail("GetOffset(after the last record) = %d, expected -1 (no such offset)", after)
	}
	got := consume(cl, topic, map[int32]int64{0: 42}, 58, 60*time.Second)[0]
	exp := make([]c.Rec, 0, 58)
	for _, r := range data[42:] {
		exp = append(exp, c.Rec{Offset: r.Offset, Key: r.Key, Value: r.Value, TS: r.TS})
	}
	if d := c.FirstDiff(exp, strip(got, false, true), "record (offset, key, value, timestamp)"); d != "" {
		c.Fail("%s", d)
	}
	c.Pass("offsets for T0+41.5s and T0+42s = 42, after the end = -1; seeked consumer read 42..99 with exact timestamps")
}

// idempotent: Producer.Idempotent (acks=all, 1 in flight, as Sarama 1.22 requires);
// 5,000 keyed records over a 3-partition topic; each partition holds its records
// exactly once, in send order, offsets contiguous from 0, high watermark = count.
func idempotent() {
	const npart = 3
	topic := c.Topic("")
	createTopic(topic, npart, nil)
	data := c.IdempotentDataset(5000)
	cfg := newConfig("compat-sarama-idempotent")
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	c.Log("producing %d records with the idempotent producer", len(data))
	reports := produceAll(cfg, topic, data, false)
	exp := c.ExpectedByPartition(data, reports, npart)
	cl := newClient(newConfig("compat-sarama"))
	defer cl.Close()
	checkAllPartitions(cl, topic, npart, exp, len(data))
	c.Pass("%d idempotent records over %d partitions (%d, %d, %d): exactly once, in order, high watermarks = counts",
		len(data), npart, len(exp[0]), len(exp[1]), len(exp[2]))
}

// checkAllPartitions reads every partition of topic from the start and checks it holds
// exactly exp (each record once, in order, offsets contiguous, high watermark = count).
func checkAllPartitions(cl sarama.Client, topic string, npart int32, exp map[int32][]c.Rec, n int) {
	starts := map[int32]int64{}
	for q := int32(0); q < npart; q++ {
		starts[q] = sarama.OffsetOldest
	}
	got := consume(cl, topic, starts, n, 120*time.Second)
	wms := map[int32][2]int64{}
	for q := int32(0); q < npart; q++ {
		got[q] = strip(got[q], true, false)
		wms[q] = watermarks(cl, topic, q)
	}
	c.CheckPartitions(exp, got, wms)
}
