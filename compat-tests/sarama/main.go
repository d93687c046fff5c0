// compat-sarama: the Sarama column of the Strom compatibility matrix.
//
// Sarama 1.22.1 from Debian (golang-github-shopify-sarama-dev), built by
// compat-tests/install.sh with Debian's Go in GOPATH mode. Usage:
//
//	compat-sarama <scenario>     env STROM_BOOTSTRAP, COMPAT_TOPIC (and STROM_BIN)
//	compat-sarama --version
//
// SARAMA_LOG=1 prints Sarama's own log (every connection, metadata refresh, group
// join/sync) to stderr.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"

	c "stromcompat/gocompat"
)

// libVersion is the Debian package version, set by install.sh (-ldflags -X).
var libVersion = "unknown"

var scenarios = map[string]func(){
	"produce-consume-auto":     produceConsumeAuto,
	"produce-consume-explicit": produceConsumeExplicit,
	"headers-timestamps":       headersTimestamps,
	"large-messages":           largeMessages,
	"compression":              compression,
	"seek-timestamp":           seekTimestamp,
	"idempotent":               idempotent,
	"metadata":                 metadata,
	"admin":                    admin,
	"admin-ops":                adminOps,
	"group-rebalance":          groupRebalance,
	"group-resume":             groupResume,
	"group-assignors":          groupAssignors,
	"group-admin":              groupAdmin,
	"group-regex": func() {
		c.Unsupported("Sarama 1.22.1 has no regex subscription: ConsumerGroup.Consume takes a fixed topic list")
	},
	"cli-lag": func() {
		c.Unsupported("cli-lag checks strom's own CLI; the confluent_kafka column drives it")
	},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s <scenario> | --version\n", os.Args[0])
		os.Exit(2)
	}
	if os.Args[1] == "--version" {
		fmt.Printf("sarama %s (Debian golang-github-shopify-sarama-dev %s, config.Version %s, %s)\n",
			c.Upstream(libVersion), libVersion, sarama.MaxVersion, runtime.Version())
		return
	}
	run, ok := scenarios[os.Args[1]]
	if !ok {
		names := make([]string, 0, len(scenarios))
		for n := range scenarios {
			names = append(names, n)
		}
		sort.Strings(names)
		c.Fail("unknown scenario %q (known: %s)", os.Args[1], strings.Join(names, ", "))
	}
	if os.Getenv("SARAMA_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Ltime|log.Lmicroseconds)
	}
	c.Watchdog(240*time.Second, os.Args[1])
	run()
	c.Fail("scenario %s returned without a verdict", os.Args[1])
}

// bootstrap is the broker list; group-resume points it at its own broker.
var bootstrap []string

func addrs() []string {
	if bootstrap == nil {
		bootstrap = strings.Split(c.Bootstrap(), ",")
	}
	return bootstrap
}

// newConfig: the newest protocol level Sarama 1.22.1 knows (V2_2_0_0), plus what every
// scenario needs. Sarama sends OffsetCommit v1 unless Consumer.Offsets.Retention is
// set; v1 was removed in Kafka 4.0 (KIP-896), so a retention is set to get v2.
func newConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.MaxVersion
	cfg.ClientID = clientID
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Retention = 24 * time.Hour
	cfg.Admin.Timeout = 30 * time.Second
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	return cfg
}

func newClient(cfg *sarama.Config) sarama.Client {
	cl, err := sarama.NewClient(addrs(), cfg)
	if err != nil {
		c.Fail("sarama.NewClient(%v): %v", addrs(), err)
	}
	return cl
}

func newAdmin(cfg *sarama.Config) sarama.ClusterAdmin {
	a, err := sarama.NewClusterAdmin(addrs(), cfg)
	if err != nil {
		c.Fail("sarama.NewClusterAdmin(%v): %v", addrs(), err)
	}
	return a
}

func strp(s string) *string { return &s }

// createTopic creates `topic` (replication factor 1) with ClusterAdmin.CreateTopic
// (CreateTopics v2) and waits until metadata shows its partitions with leaders.
func createTopic(topic string, partitions int32, configs map[string]string) {
	a := newAdmin(newConfig("compat-sarama-admin"))
	defer a.Close()
	entries := map[string]*string{}
	for k, v := range configs {
		entries[k] = strp(v)
	}
	if err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1,
		ConfigEntries: entries}, false); err != nil {
		c.Fail("CreateTopic(%s, %d partitions, %v): %v", topic, partitions, configs, err)
	}
	cl := newClient(newConfig("compat-sarama-meta"))
	defer cl.Close()
	waitPartitions(cl, topic, int(partitions))
}

// waitPartitions waits until metadata shows `topic` with exactly n partitions, each
// led by a listed broker.
func waitPartitions(cl sarama.Client, topic string, n int) {
	dl := c.NewDeadline(30 * time.Second)
	seen := "nothing"
	for {
		if err := cl.RefreshMetadata(topic); err != nil {
			seen = fmt.Sprintf("RefreshMetadata error %v", err)
		} else if parts, err := cl.Partitions(topic); err != nil {
			seen = fmt.Sprintf("Partitions error %v", err)
		} else if len(parts) != n {
			seen = fmt.Sprintf("%d partitions %v", len(parts), parts)
		} else {
			brokers := map[int32]bool{}
			for _, b := range cl.Brokers() {
				brokers[b.ID()] = true
			}
			ok := true
			for _, p := range parts {
				l, err := cl.Leader(topic, p)
				if err != nil {
					seen, ok = fmt.Sprintf("partition %d: no leader (%v)", p, err), false
					break
				}
				if !brokers[l.ID()] {
					seen, ok = fmt.Sprintf("partition %d: leader %d not among brokers %v", p, l.ID(), brokers), false
					break
				}
			}
			if ok {
				return
			}
		}
		if dl.Expired() {
			c.Fail("metadata for %s: expected %d partitions with leaders, last saw: %s", topic, n, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func toMessage(topic string, r c.Rec, withPartition bool) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic}
	if r.Key != nil {
		m.Key = sarama.ByteEncoder(r.Key)
	}
	if r.Value != nil {
		m.Value = sarama.ByteEncoder(r.Value)
	}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	if r.TS != 0 {
		m.Timestamp = msTime(r.TS)
	}
	if withPartition {
		m.Partition = r.Partition
	}
	return m
}

func msTime(ms int64) time.Time { return time.Unix(ms/1000, (ms%1000)*int64(time.Millisecond)) }
func toMS(t time.Time) int64    { return t.UnixNano() / int64(time.Millisecond) }

// produceError is a failed delivery.
type produceError struct {
	Index int
	Err   error
}

// produceAllErr sends every record with an AsyncProducer (as fast as it accepts them)
// and returns each record's (partition, offset) in send order, plus the failed
// deliveries. manual: each record goes to its own Partition (cfg must then use
// sarama.NewManualPartitioner); otherwise cfg's partitioner picks.
func produceAllErr(cfg *sarama.Config, topic string, recs []c.Rec, manual bool) ([]c.Report, []produceError) {
	if manual {
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
	}
	p, err := sarama.NewAsyncProducer(addrs(), cfg)
	if err != nil {
		c.Fail("NewAsyncProducer: %v", err)
	}
	go func() {
		for i, r := range recs {
			m := toMessage(topic, r, manual)
			m.Metadata = i
			p.Input() <- m
		}
	}()
	reports := make([]c.Report, len(recs))
	got := make([]bool, len(recs))
	var errs []produceError
	timeout := time.After(120 * time.Second)
	for n := 0; n < len(recs); n++ {
		select {
		case m := <-p.Successes():
			i := m.Metadata.(int)
			reports[i] = c.Report{Partition: m.Partition, Offset: m.Offset}
			got[i] = true
		case e := <-p.Errors():
			errs = append(errs, produceError{e.Msg.Metadata.(int), e.Err})
		case <-timeout:
			missing := 0
			for _, g := range got {
				if !g {
					missing++
				}
			}
			c.Fail("%d of %d deliveries still outstanding after 120s", missing-len(errs), len(recs))
		}
	}
	if err := p.Close(); err != nil && len(errs) == 0 {
		c.Log("producer close: %v", err)
	}
	sort.Slice(errs, func(a, b int) bool { return errs[a].Index < errs[b].Index })
	return reports, errs
}

// produceAll is produceAllErr failing the scenario on any delivery error.
func produceAll(cfg *sarama.Config, topic string, recs []c.Rec, manual bool) []c.Report {
	reports, errs := produceAllErr(cfg, topic, recs, manual)
	if len(errs) > 0 {
		c.Fail("delivery failed for %d message(s); first: index %d: %v", len(errs), errs[0].Index, errs[0].Err)
	}
	return reports
}

func fromMessage(m *sarama.ConsumerMessage) c.Rec {
	r := c.Rec{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, TS: toMS(m.Timestamp)}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, c.Header{Key: string(h.Key), Value: h.Value})
	}
	return r
}

// consume reads the given partitions of `topic` from the given offsets (a partition
// consumer each, no group) until `expected` records arrived and every partition is
// caught up with its high watermark (so extra records are noticed), or the timeout.
func consume(cl sarama.Client, topic string, starts map[int32]int64, expected int, timeout time.Duration) map[int32][]c.Rec {
	consumer, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		c.Fail("NewConsumerFromClient: %v", err)
	}
	defer consumer.Close()
	type item struct {
		m   *sarama.ConsumerMessage
		err error
	}
	ch := make(chan item, 1024)
	pcs := map[int32]sarama.PartitionConsumer{}
	next := map[int32]int64{}
	for p, off := range starts {
		pc, err := consumer.ConsumePartition(topic, p, off)
		if err != nil {
			c.Fail("ConsumePartition(%s, %d, %d): %v", topic, p, off, err)
		}
		pcs[p] = pc
		if off >= 0 {
			next[p] = off
		}
		go func(pc sarama.PartitionConsumer) {
			for m := range pc.Messages() {
				ch <- item{m: m}
			}
		}(pc)
		go func(pc sarama.PartitionConsumer) {
			for e := range pc.Errors() {
				ch <- item{err: e}
			}
		}(pc)
	}
	defer func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
	}()
	got := map[int32][]c.Rec{}
	total := 0
	caughtUp := func() bool {
		for p, pc := range pcs {
			if pc.HighWaterMarkOffset() > next[p] {
				return false
			}
		}
		return true
	}
	dl := c.NewDeadline(timeout)
	var lastErr string
	for !dl.Expired() {
		if total >= expected && caughtUp() {
			// A short quiet period to notice records beyond what was expected.
			select {
			case it := <-ch:
				if it.m == nil {
					continue
				}
				got[it.m.Partition] = append(got[it.m.Partition], fromMessage(it.m))
				next[it.m.Partition] = it.m.Offset + 1
				total++
				continue
			case <-time.After(300 * time.Millisecond):
				return got
			}
		}
		select {
		case it := <-ch:
			if it.err != nil {
				if it.err.Error() != lastErr {
					c.Log("consumer error (continuing): %v", it.err)
					lastErr = it.err.Error()
				}
				continue
			}
			got[it.m.Partition] = append(got[it.m.Partition], fromMessage(it.m))
			next[it.m.Partition] = it.m.Offset + 1
			total++
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.Log("consume timed out after %s with %d/%d records", timeout, total, expected)
	return got
}

// watermarks is (earliest, latest) of a partition via ListOffsets v1.
func watermarks(cl sarama.Client, topic string, p int32) [2]int64 {
	lo, err := cl.GetOffset(topic, p, sarama.OffsetOldest)
	if err != nil {
		c.Fail("GetOffset(%s, %d, oldest): %v", topic, p, err)
	}
	hi, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		c.Fail("GetOffset(%s, %d, newest): %v", topic, p, err)
	}
	return [2]int64{lo, hi}
}

// --- consumer groups ---------------------------------------------------------

// handler adapts functions to sarama.ConsumerGroupHandler.
type handler struct {
	setup   func(sarama.ConsumerGroupSession) error
	cleanup func(sarama.ConsumerGroupSession) error
	claim   func(sarama.ConsumerGroupSession, sarama.ConsumerGroupClaim) error
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	if h.setup == nil {
		return nil
	}
	return h.setup(s)
}

func (h *handler) Cleanup(s sarama.ConsumerGroupSession) error {
	if h.cleanup == nil {
		return nil
	}
	return h.cleanup(s)
}

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
	if h.claim == nil {
		for range cl.Messages() {
		}
		return nil
	}
	return h.claim(s, cl)
}

// member is one ConsumerGroup (own client) running Consume in a loop, as Sarama's
// documentation prescribes: each Consume call is one generation's session.
type member struct {
	name   string
	cg     sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
}

// groupConfig: classic group member settings shared by the group scenarios.
func groupConfig(clientID string) *sarama.Config {
	cfg := newConfig(clientID)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.CommitInterval = 200 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 500 * time.Millisecond
	return cfg
}

// startMember joins `group` for `topics`; onErr sees every error Sarama reports on
// Errors() (offset commit failures arrive there as *sarama.ConsumerError).
func startMember(name, group string, topics []string, cfg *sarama.Config, h *handler, onErr func(error)) *member {
	cg, err := sarama.NewConsumerGroup(addrs(), group, cfg)
	if err != nil {
		c.Fail("%s: NewConsumerGroup(%s): %v", name, group, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, cg: cg, cancel: cancel, done: make(chan struct{})}
	go func() {
		for e := range cg.Errors() {
			c.Log("%s: group error: %v", name, e)
			if onErr != nil {
				onErr(e)
			}
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, topics, h); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.Log("%s: Consume: %v", name, err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	return m
}

// stop ends the current session (its marked offsets are committed on release) and
// leaves the group.
func (m *member) stop() {
	m.cancel()
	<-m.done
	if err := m.cg.Close(); err != nil {
		c.Log("%s: Close: %v", m.name, err)
	}
}

// owners tracks which member holds which partitions (eager protocol: a member's
// whole assignment is replaced at every generation).
type owners struct {
	mu sync.Mutex
	by map[string]map[int32]bool
}

func newOwners() *owners { return &owners{by: map[string]map[int32]bool{}} }

func (o *owners) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	names := make([]string, 0, len(o.by))
	for n := range o.by {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, n+"="+fmt.Sprint(sortedParts(o.by[n])))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func sortedParts(s map[int32]bool) []int32 {
	out := make([]int32, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// assign records `name`'s new claims, failing if another member still owns one.
func (o *owners) assign(name string, parts []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	set := map[int32]bool{}
	for _, p := range parts {
		set[p] = true
	}
	for other, owned := range o.by {
		if other == name {
			continue
		}
		for p := range set {
			if owned[p] {
				c.Fail("%s assigned partition %d while %s still owns %v", name, p, other, sortedParts(owned))
			}
		}
	}
	o.by[name] = set
}

func (o *owners) revoke(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.by[name] = map[int32]bool{}
}

func (o *owners) drop(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.by, name)
}

func (o *owners) owns(name string, p int32) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.by[name][p]
}

// loads is the number of partitions of each member, by member name order.
func (o *owners) loads() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	names := make([]string, 0, len(o.by))
	for n := range o.by {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]int, len(names))
	for i, n := range names {
		out[i] = len(o.by[n])
	}
	return out
}

func (o *owners) get(name string) []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return sortedParts(o.by[name])
}

func waitUntil(timeout time.Duration, what func() string, ok func() bool) {
	dl := c.NewDeadline(timeout)
	for !ok() {
		if dl.Expired() {
			c.Fail("timed out after %s waiting for %s", timeout, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
