package main

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/Shopify/sarama"

	c "stromcompat/gocompat"
)

// metadata: a topic created with 3 partitions is listed (all-topics and per-topic
// metadata, Metadata v5) with 3 partitions led by listed brokers; a topic auto-created
// by producing to it has 1 partition; the controller (Metadata v5) is a listed broker;
// ClusterAdmin.DescribeCluster (Metadata v0) and DescribeTopics agree.
func metadata() {
	topic := c.Topic("-created")
	auto := c.Topic("-auto")
	c.Log("creating %s with 3 partitions", topic)
	createTopic(topic, 3, nil)
	cl := newClient(newConfig("compat-sarama"))
	defer cl.Close()
	if err := cl.RefreshMetadata(); err != nil {
		c.Fail("all-topics RefreshMetadata: %v", err)
	}
	brokers := cl.Brokers()
	if len(brokers) == 0 {
		c.Fail("metadata lists no brokers")
	}
	var names []string
	for _, b := range brokers {
		host, port, err := net.SplitHostPort(b.Addr())
		if p, _ := strconv.Atoi(port); err != nil || host == "" || p <= 0 {
			c.Fail("broker %d has bad address %q", b.ID(), b.Addr())
		}
		names = append(names, fmt.Sprintf("%d=%s", b.ID(), b.Addr()))
	}
	sort.Strings(names)
	topics, err := cl.Topics()
	if err != nil {
		c.Fail("Topics(): %v", err)
	}
	if !contains(topics, topic) {
		c.Fail("all-topics metadata does not list %s (%d topics)", topic, len(topics))
	}
	waitPartitions(cl, topic, 3)

	produceAll(newConfig("compat-sarama"), auto, []c.Rec{{Key: []byte("k"), Value: []byte("v")}}, false)
	waitPartitions(cl, auto, 1)
	if err := cl.RefreshMetadata(); err != nil {
		c.Fail("all-topics RefreshMetadata: %v", err)
	}
	if topics, _ = cl.Topics(); !contains(topics, auto) {
		c.Fail("all-topics metadata does not list auto-created %s", auto)
	}

	a := newAdmin(newConfig("compat-sarama-admin"))
	defer a.Close()
	// ClusterAdmin.DescribeCluster sends Metadata v0, which has no controller id
	// (Sarama reports -1); the client's Metadata v5 names it.
	cbrokers, _, err := a.DescribeCluster()
	if err != nil {
		c.Fail("DescribeCluster: %v", err)
	}
	if len(cbrokers) != len(brokers) {
		c.Fail("DescribeCluster lists %d brokers, metadata %d", len(cbrokers), len(brokers))
	}
	ctrl, err := cl.Controller()
	if err != nil {
		c.Fail("Controller() (Metadata v5 controller id): %v", err)
	}
	controller := ctrl.ID()
	found := false
	for _, b := range brokers {
		found = found || b.ID() == controller
	}
	if !found {
		c.Fail("controller %d is not among the brokers %v", controller, names)
	}
	md, err := a.DescribeTopics([]string{topic, auto})
	if err != nil {
		c.Fail("DescribeTopics: %v", err)
	}
	counts := map[string]int{}
	for _, t := range md {
		if t.Err != sarama.ErrNoError {
			c.Fail("DescribeTopics(%s): %v", t.Name, t.Err)
		}
		counts[t.Name] = len(t.Partitions)
	}
	if counts[topic] != 3 || counts[auto] != 1 {
		c.Fail("DescribeTopics partition counts %v, expected %s=3 %s=1", counts, topic, auto)
	}
	c.Pass("created topic has 3 partitions, auto-created topic 1, brokers %v, controller %d", names, controller)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describeConfigs sends DescribeConfigs v1 through Sarama's Broker API. Sarama
// 1.22.1's ClusterAdmin.DescribeConfig sends v0, which Kafka 4.0 removed (KIP-896).
func describeConfigs(cl sarama.Client, typ sarama.ConfigResourceType, name string) map[string]*sarama.ConfigEntry {
	b, err := cl.Controller()
	if err != nil {
		c.Fail("Controller(): %v", err)
	}
	resp, err := b.DescribeConfigs(&sarama.DescribeConfigsRequest{Version: 1,
		Resources: []*sarama.ConfigResource{{Type: typ, Name: name}}})
	if err != nil {
		c.Fail("DescribeConfigs v1 (%v %s): %v", typ, name, err)
	}
	if len(resp.Resources) != 1 {
		c.Fail("DescribeConfigs v1 (%v %s): %d resources in the response", typ, name, len(resp.Resources))
	}
	r := resp.Resources[0]
	if r.ErrorCode != 0 {
		c.Fail("DescribeConfigs v1 (%v %s): error %v %q", typ, name, sarama.KError(r.ErrorCode), r.ErrorMsg)
	}
	out := map[string]*sarama.ConfigEntry{}
	for _, e := range r.Configs {
		out[e.Name] = e
	}
	return out
}

// kafkaBrokerConfigType is Kafka's ConfigResource type BROKER (see admin()).
const kafkaBrokerConfigType = sarama.ConfigResourceType(4)

func entryString(e *sarama.ConfigEntry) string {
	if e == nil {
		return "<missing>"
	}
	return fmt.Sprintf("%s=%q (source %v)", e.Name, e.Value, e.Source)
}

// admin: create with config overrides; DescribeConfigs of the topic (value and
// DYNAMIC_TOPIC_CONFIG source) and of the broker; unknown config -> INVALID_CONFIG;
// DeleteTopics; re-create under the same name from offset 0.
func admin() {
	topic := c.Topic("-admin")
	cfg := newConfig("compat-sarama-admin")
	a := newAdmin(cfg)
	defer a.Close()
	c.Log("creating %s with segment.bytes=1048576, retention.ms=3600000", topic)
	if err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"segment.bytes": strp("1048576"), "retention.ms": strp("3600000")}}, false); err != nil {
		c.Fail("CreateTopic with configs: %v", err)
	}
	cl := newClient(newConfig("compat-sarama"))
	defer cl.Close()
	waitPartitions(cl, topic, 2)

	// What a Sarama 1.22 user calls first: ClusterAdmin.DescribeConfig (DescribeConfigs
	// v0). Kafka 4 closes the connection on removed versions; so must Strom.
	probe := newAdmin(newConfig("compat-sarama-v0-probe"))
	_, v0err := probe.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	probe.Close()
	if v0err == nil {
		c.Fail("ClusterAdmin.DescribeConfig (DescribeConfigs v0) succeeded; Kafka 4.0 removed v0 (KIP-896) and closes the connection")
	}
	c.Log("ClusterAdmin.DescribeConfig (DescribeConfigs v0) refused as on Kafka 4: %v", v0err)

	tc := describeConfigs(cl, sarama.TopicResource, topic)
	if e := tc["segment.bytes"]; e == nil || e.Value != "1048576" || e.Source != sarama.SourceTopic {
		c.Fail("DescribeConfigs: %s, expected segment.bytes=\"1048576\" from DYNAMIC_TOPIC_CONFIG", entryString(e))
	}
	if e := tc["retention.ms"]; e == nil || e.Value != "3600000" || e.Source != sarama.SourceTopic {
		c.Fail("DescribeConfigs: %s, expected retention.ms=\"3600000\" from DYNAMIC_TOPIC_CONFIG", entryString(e))
	}
	if e := tc["cleanup.policy"]; e == nil || e.Value != "delete" || e.Source != sarama.SourceDefault {
		c.Fail("DescribeConfigs: %s, expected the default cleanup.policy=\"delete\"", entryString(e))
	}
	ctrl, err := cl.Controller()
	if err != nil {
		c.Fail("Controller(): %v", err)
	}
	// Sarama 1.22.1's BrokerResource is 5 (its ConfigResourceType constants follow the
	// ACL resource types); Kafka's ConfigResource type BROKER is 4, and a broker answers
	// 5 with INVALID_REQUEST. So the broker is described with type 4.
	bc := describeConfigs(cl, kafkaBrokerConfigType, strconv.Itoa(int(ctrl.ID())))
	if e := bc["num.partitions"]; e == nil || e.Value != "1" {
		c.Fail("broker DescribeConfigs: %s, expected num.partitions=\"1\"", entryString(e))
	}

	md, err := ctrl.GetMetadata(&sarama.MetadataRequest{Version: 5})
	if err != nil {
		c.Fail("Metadata v5: %v", err)
	}
	if md.ClusterID == nil || *md.ClusterID == "" || len(md.Brokers) == 0 {
		c.Fail("Metadata v5 has no cluster id or no brokers: %+v", md)
	}

	bad := c.Topic("-badcfg")
	err = a.CreateTopic(bad, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"no.such.config": strp("1")}}, false)
	if te, ok := err.(*sarama.TopicError); !ok || te.Err != sarama.ErrInvalidConfig {
		c.Fail("creating a topic with an unknown config gave %v, expected INVALID_CONFIG", err)
	}

	c.Log("deleting %s", topic)
	if err := a.DeleteTopic(topic); err != nil {
		c.Fail("DeleteTopic: %v", err)
	}
	if err := cl.RefreshMetadata(); err != nil {
		c.Fail("RefreshMetadata: %v", err)
	}
	if topics, _ := cl.Topics(); contains(topics, topic) {
		c.Fail("deleted topic %s is still listed", topic)
	}
	if err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		c.Fail("re-creating %s: %v", topic, err)
	}
	waitPartitions(cl, topic, 1)
	r := produceAll(newConfig("compat-sarama"), topic, []c.Rec{{Key: []byte("k"), Value: []byte("fresh")}}, false)
	if r[0] != (c.Report{Partition: 0, Offset: 0}) {
		c.Fail("re-created topic should start at offset 0, delivery report %+v", r[0])
	}
	c.Pass("configs described (topic + broker, DescribeConfigs v1; ClusterAdmin's v0 refused as on Kafka 4), cluster %s, "+
		"unknown config refused, delete + re-create ok", *md.ClusterID)
}

// admin-ops: CreatePartitions 1 -> 3 (shrink to 2 refused with INVALID_PARTITIONS);
// AlterConfigs (Sarama 1.22 has no IncrementalAlterConfigs: SET then an empty
// config set, which drops the override); DeleteRecords (earliest offset moves to 6,
// a consumer from the oldest offset starts there).
func adminOps() {
	topic := c.Topic("-ops")
	createTopic(topic, 1, nil)
	var recs []c.Rec
	for i := 0; i < 10; i++ {
		recs = append(recs, c.Rec{Value: []byte(fmt.Sprintf("v%d", i))})
	}
	produceAll(newConfig("compat-sarama"), topic, recs, true)
	a := newAdmin(newConfig("compat-sarama-admin"))
	defer a.Close()
	cl := newClient(newConfig("compat-sarama"))
	defer cl.Close()

	if err := a.CreatePartitions(topic, 3, nil, false); err != nil {
		c.Fail("CreatePartitions(3): %v", err)
	}
	waitPartitions(cl, topic, 3)
	err := a.CreatePartitions(topic, 2, nil, false)
	if te, ok := err.(*sarama.TopicPartitionError); !ok || te.Err != sarama.ErrInvalidPartitions {
		c.Fail("shrinking to 2 partitions gave %v, expected INVALID_PARTITIONS", err)
	}

	if err := a.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": strp("1000")}, false); err != nil {
		c.Fail("AlterConfig(retention.ms=1000): %v", err)
	}
	if e := describeConfigs(cl, sarama.TopicResource, topic)["retention.ms"]; e == nil || e.Value != "1000" || e.Source != sarama.SourceTopic {
		c.Fail("after AlterConfig: %s, expected retention.ms=\"1000\" from DYNAMIC_TOPIC_CONFIG", entryString(e))
	}
	if err := a.AlterConfig(sarama.TopicResource, topic, map[string]*string{}, false); err != nil {
		c.Fail("AlterConfig(no configs): %v", err)
	}
	if e := describeConfigs(cl, sarama.TopicResource, topic)["retention.ms"]; e == nil || e.Value != "604800000" || e.Source != sarama.SourceDefault {
		c.Fail("after AlterConfig with no configs: %s, expected the default retention.ms=\"604800000\"", entryString(e))
	}

	if err := a.DeleteRecords(topic, map[int32]int64{0: 6}); err != nil {
		c.Fail("DeleteRecords(0: 6): %v", err)
	}
	if wm := watermarks(cl, topic, 0); wm != [2]int64{6, 10} {
		c.Fail("watermarks after DeleteRecords: %v, expected [6 10]", wm)
	}
	got := consume(cl, topic, map[int32]int64{0: sarama.OffsetOldest}, 4, 30*time.Second)[0]
	if len(got) == 0 || got[0].Offset != 6 || len(got) != 4 {
		c.Fail("consumer from the oldest offset after DeleteRecords read %d records starting at %v", len(got), got)
	}
	c.Pass("CreatePartitions 1→3 (shrink refused), AlterConfigs set/reset, DeleteRecords (watermarks 6..10, consumer starts at 6)")
}
