package main

// Setup through Sarama (Debian's 1.22.1, the other Go client built here): kafka-go
// 0.2.1 can create topics only with CreateTopics v0, which Kafka 4.0 removed
// (KIP-896), so cells whose subject is not topic creation create their topics with
// Sarama's ClusterAdmin (CreateTopics v2), as compat-tests/README.md allows ("topic
// setup may use another admin client"). When kafka-go's own producer is refused, a
// cell seeds the same records with Sarama so that kafka-go's consumer is still
// exercised, and reports both outcomes.

import (
	"time"

	"github.com/Shopify/sarama"

	c "stromcompat/gocompat"
)

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.MaxVersion
	cfg.ClientID = "compat-kafka-go-setup"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.MaxMessageBytes = 4 << 20
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Offsets.Retention = 24 * time.Hour // OffsetCommit v2, not v1
	cfg.Admin.Timeout = 30 * time.Second
	return cfg
}

// setupTopic creates a topic with Sarama and waits for its partitions' leaders.
func setupTopic(topic string, partitions int32, configs map[string]string) {
	a, err := sarama.NewClusterAdmin(addrs(), saramaConfig())
	if err != nil {
		c.Fail("setup (Sarama): NewClusterAdmin: %v", err)
	}
	defer a.Close()
	entries := map[string]*string{}
	for k := range configs {
		v := configs[k]
		entries[k] = &v
	}
	if err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1,
		ConfigEntries: entries}, false); err != nil {
		c.Fail("setup (Sarama): CreateTopic(%s, %d partitions): %v", topic, partitions, err)
	}
	waitTopic(topic, int(partitions))
}

// seed produces recs (each to its own Partition) with Sarama, compressed with codec.
func seed(topic string, recs []c.Rec, codec sarama.CompressionCodec) {
	cfg := saramaConfig()
	cfg.Producer.Compression = codec
	p, err := sarama.NewSyncProducer(addrs(), cfg)
	if err != nil {
		c.Fail("seed (Sarama): NewSyncProducer: %v", err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		m := &sarama.ProducerMessage{Topic: topic, Partition: r.Partition}
		if r.Key != nil {
			m.Key = sarama.ByteEncoder(r.Key)
		}
		if r.Value != nil {
			m.Value = sarama.ByteEncoder(r.Value)
		}
		if r.TS != 0 {
			m.Timestamp = time.Unix(r.TS/1000, (r.TS%1000)*int64(time.Millisecond))
		}
		msgs[i] = m
	}
	for start := 0; start < len(msgs); start += 500 {
		end := start + 500
		if end > len(msgs) {
			end = len(msgs)
		}
		if err := p.SendMessages(msgs[start:end]); err != nil {
			c.Fail("seed (Sarama): SendMessages: %v", err)
		}
	}
}

// committedOffset reads a group's committed offset with Sarama (kafka-go 0.2.1 has
// no public OffsetFetch).
func committedOffset(group, topic string, partition int32) int64 {
	a, err := sarama.NewClusterAdmin(addrs(), saramaConfig())
	if err != nil {
		c.Fail("Sarama NewClusterAdmin: %v", err)
	}
	defer a.Close()
	res, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
	if err != nil {
		c.Fail("Sarama ListConsumerGroupOffsets: %v", err)
	}
	b := res.GetBlock(topic, partition)
	if b == nil || b.Err != sarama.ErrNoError {
		c.Fail("Sarama ListConsumerGroupOffsets(%s, %s/%d): %+v", group, topic, partition, b)
	}
	return b.Offset
}
