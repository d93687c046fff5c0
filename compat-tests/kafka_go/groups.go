package main

import (
	"context"
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
	kafka "github.com/segmentio/kafka-go"

	c "stromcompat/gocompat"
)

// gmember is a kafka-go group Reader consuming in a goroutine: FetchMessage, hand the
// record to onMsg, then CommitMessages (synchronous: CommitInterval 0).
type gmember struct {
	name   string
	r      *kafka.Reader
	el     *errLog
	cancel context.CancelFunc
	done   chan struct{}
}

func startGroupMember(name, group, topic string, balancers []kafka.GroupBalancer,
	onMsg func(name string, m kafka.Message), onCommit func(name string, m kafka.Message, err error)) *gmember {
	el := &errLog{}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           addrs(),
		GroupID:           group,
		Topic:             topic,
		GroupBalancers:    balancers,
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           250 * time.Millisecond,
		Logger:            debugLogger(name),
		ErrorLogger:       log.New(el, "", 0),
	})
	ctx, cancel := context.WithCancel(context.Background())
	m := &gmember{name: name, r: r, el: el, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			msg, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					c.Log("%s: FetchMessage: %v", name, err)
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
			if onMsg != nil {
				onMsg(name, msg)
			}
			err = r.CommitMessages(ctx, msg)
			if onCommit != nil {
				onCommit(name, msg, err)
			}
		}
	}()
	return m
}

func (m *gmember) stop() {
	m.cancel()
	<-m.done
	if err := m.r.Close(); err != nil {
		c.Log("%s: Close: %v", m.name, err)
	}
}

func waitFor(timeout time.Duration, what func() string, ok func() bool) bool {
	dl := c.NewDeadline(timeout)
	for !ok() {
		if dl.Expired() {
			c.Log("timed out after %s waiting for %s", timeout, what())
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

func partitionRecs(prefix string, n, npart int) []c.Rec {
	out := make([]c.Rec, n)
	for i := range out {
		out[i] = c.Rec{Partition: int32(i % npart), Key: []byte(fmt.Sprintf("%s-k%d", prefix, i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
	}
	return out
}

// group-rebalance: three group Readers (range, the first of kafka-go's default
// balancers) on a 6-partition topic; 600 records; each member must get the records of
// exactly two partitions, each record once. One member leaves; 600 more records go to
// the remaining two, three partitions each. kafka-go 0.2.1 exposes no assignment, so
// ownership is inferred from the partitions each member receives records from.
func groupRebalance() {
	var p problems
	topic := c.Topic("-grp")
	group := c.Topic("-group")
	setupTopic(topic, 6, nil)
	first := partitionRecs("first", 600, 6)
	produceOrSeed(&p, topic, first, nil, byKey(first), sarama.CompressionNone)

	type key struct {
		p   int
		off int64
	}
	var mu sync.Mutex
	delivered := map[key]string{}
	uncommitted := map[key]bool{}
	parts := map[string]map[int]bool{} // member -> partitions it got records from (this phase)
	dup := ""
	onMsg := func(name string, m kafka.Message) {
		mu.Lock()
		defer mu.Unlock()
		k := key{m.Partition, m.Offset}
		if prev, ok := delivered[k]; ok && !uncommitted[k] && dup == "" {
			dup = fmt.Sprintf("committed record %d@%d delivered to %s and again to %s", k.p, k.off, prev, name)
		}
		delete(uncommitted, k)
		delivered[k] = name
		if parts[name] == nil {
			parts[name] = map[int]bool{}
		}
		parts[name][m.Partition] = true
	}
	onCommit := func(name string, m kafka.Message, err error) {
		if err != nil {
			mu.Lock()
			uncommitted[key{m.Partition, m.Offset}] = true
			mu.Unlock()
		}
	}
	state := func() string {
		mu.Lock()
		defer mu.Unlock()
		s := fmt.Sprintf("%d records delivered; partitions per member:", len(delivered))
		names := make([]string, 0, len(parts))
		for n := range parts {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			s += fmt.Sprintf(" %s=%d", n, len(parts[n]))
		}
		return s
	}
	loadsAre := func(want int, n int) bool {
		mu.Lock()
		defer mu.Unlock()
		if len(parts) != n {
			return false
		}
		for _, s := range parts {
			if len(s) != want {
				return false
			}
		}
		return true
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(delivered) }
	members := map[string]*gmember{}
	for _, n := range []string{"m1", "m2", "m3"} {
		members[n] = startGroupMember(n, group, topic, nil, onMsg, onCommit)
	}
	stopAll := func() {
		for _, m := range members {
			m.stop()
		}
	}
	// Joining takes the 3 s initial rebalance delay; no record at all after 15 s means
	// consuming does not work (the 40 s bound is for slow progress).
	started := time.Now()
	if !waitFor(40*time.Second, state, func() bool {
		return (count() == 0 && time.Since(started) > 15*time.Second) || (count() == 600 && loadsAre(2, 3))
	}) || count() == 0 {
		p.add("3 members did not consume the 600 records two partitions each: %s; m1's reader log: %s", state(), members["m1"].el)
		stopAll()
		p.verdict("")
	}
	members["m3"].stop()
	delete(members, "m3")
	mu.Lock()
	parts = map[string]map[int]bool{}
	mu.Unlock()
	second := partitionRecs("second", 600, 6)
	produceOrSeed(&p, topic, second, nil, byKey(second), sarama.CompressionNone)
	if !waitFor(40*time.Second, state, func() bool { return count() == 1200 && loadsAre(3, 2) }) {
		p.add("after m3 left, the 2 members did not consume the next 600 records three partitions each: %s", state())
	}
	stopAll()
	if dup != "" {
		p.add("%s", dup)
	}
	p.verdict("range: 2+2+2 then 3+3; 1200 records, no committed record delivered twice")
}

// group-resume: a group Reader reads and commits (CommitMessages, synchronous) 60 of
// 100 records and closes; the committed offset (read with Sarama: kafka-go has no
// public OffsetFetch) is 60; the broker (own, from STROM_BIN) restarts; a new Reader
// of the group reads 60..99 and nothing more.
func groupResume() {
	var p problems
	own := c.NewOwnBroker().Start()
	bootstrap = []string{own.Bootstrap()}
	topic := c.Topic("-resume")
	group := c.Topic("-resume-group")
	setupTopic(topic, 1, nil)
	var recs []c.Rec
	for i := 0; i < 100; i++ {
		recs = append(recs, c.Rec{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	produceOrSeed(&p, topic, recs, nil, nil, sarama.CompressionNone)

	take := func(name string, n int, commit bool, extra time.Duration) ([]int64, time.Duration, string) {
		el := &errLog{}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: addrs(), GroupID: group, Topic: topic,
			HeartbeatInterval: 500 * time.Millisecond, SessionTimeout: 10 * time.Second, MinBytes: 1, MaxBytes: 1 << 20,
			MaxWait: 250 * time.Millisecond, Logger: debugLogger(name), ErrorLogger: log.New(el, "", 0)})
		defer r.Close()
		start := time.Now()
		var offs []int64
		var firstAt time.Duration
		for len(offs) < n {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := r.FetchMessage(ctx)
			cancel()
			if err != nil {
				return offs, firstAt, fmt.Sprintf("%s: Reader.FetchMessage (Fetch v2): %v after %d of %d records; reader log: %s",
					name, err, len(offs), n, el)
			}
			if len(offs) == 0 {
				firstAt = time.Since(start)
			}
			offs = append(offs, m.Offset)
			if commit {
				if err := r.CommitMessages(context.Background(), m); err != nil {
					return offs, firstAt, fmt.Sprintf("%s: CommitMessages (OffsetCommit v2): %v", name, err)
				}
			}
		}
		if extra > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), extra)
			m, err := r.FetchMessage(ctx)
			cancel()
			if err == nil {
				offs = append(offs, m.Offset)
			}
		}
		return offs, firstAt, ""
	}

	offs, joined, err := take("first", 60, true, 0)
	if err != "" {
		p.add("%s", err)
		p.verdict("")
	}
	if d := c.FirstDiffInts(c.Range(0, 60), offs, "offset"); d != "" {
		p.add("first member: %s", d)
	}
	if got := committedOffset(group, topic, 0); got != 60 {
		p.add("committed offset after the first member left is %d, expected 60", got)
	}
	c.Log("restarting the broker")
	own.Restart(false)
	rest, _, err := take("second", 40, false, 2*time.Second)
	if err != "" {
		p.add("%s", err)
	} else if d := c.FirstDiffInts(c.Range(60, 100), rest, "offset after the restart"); d != "" {
		p.add("%s", d)
	}
	p.verdict("resumed at offset 60 after restart; join→first record %.2fs (initial delay 3 s)", joined.Seconds())
}

// recordingBalancer wraps a kafka-go GroupBalancer: its UserData carries the member's
// name (so the leader can tell members apart) and the plans the leader computes are
// recorded. kafka-go 0.2.1 tells a member nothing about its assignment, so the
// leader's plans are what can be observed.
type recordingBalancer struct {
	kafka.GroupBalancer
	name  string
	plans *planLog
}

type planLog struct {
	mu    sync.Mutex
	plans []map[string][]int
}

func (b *recordingBalancer) UserData() ([]byte, error) { return []byte(b.name), nil }

func (b *recordingBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	a := b.GroupBalancer.AssignGroups(members, partitions)
	plan := map[string][]int{}
	for _, m := range members {
		var ps []int
		for _, tp := range a[m.ID] {
			ps = append(ps, tp...)
		}
		sort.Ints(ps)
		plan[string(m.UserData)] = ps
	}
	b.plans.mu.Lock()
	b.plans.plans = append(b.plans.plans, plan)
	b.plans.mu.Unlock()
	c.Log("leader %s computed %v", b.name, plan)
	return a
}

func (l *planLog) last() map[string][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.plans) == 0 {
		return nil
	}
	return l.plans[len(l.plans)-1]
}

// group-assignors: for kafka-go's range and round-robin balancers, member a gets all
// 4 partitions, b joins, and the plan gives 2 each, disjoint and covering the topic.
func groupAssignors() {
	var results []string
	for _, bal := range []kafka.GroupBalancer{kafka.RangeGroupBalancer{}, kafka.RoundRobinGroupBalancer{}} {
		name := bal.ProtocolName()
		topic := c.Topic("-" + name)
		group := c.Topic("-" + name + "-group")
		setupTopic(topic, 4, nil)
		plans := &planLog{}
		mk := func(member string) *gmember {
			return startGroupMember(member, group, topic,
				[]kafka.GroupBalancer{&recordingBalancer{GroupBalancer: bal, name: member, plans: plans}}, nil, nil)
		}
		t0 := time.Now()
		a := mk("a")
		if !waitFor(30*time.Second, func() string { return fmt.Sprintf("%s: a alone with 4 partitions, plans %v", name, plans.last()) },
			func() bool { pl := plans.last(); return len(pl) == 1 && len(pl["a"]) == 4 }) {
			c.Fail("%s: no plan giving a all 4 partitions (last plan %v); a's reader log: %s", name, plans.last(), a.el)
		}
		b := mk("b")
		if !waitFor(30*time.Second, func() string { return fmt.Sprintf("%s: 2/2 plan, last %v", name, plans.last()) },
			func() bool { pl := plans.last(); return len(pl) == 2 && len(pl["a"]) == 2 && len(pl["b"]) == 2 }) {
			c.Fail("%s: no plan giving a and b 2 partitions each (last plan %v); b's reader log: %s", name, plans.last(), b.el)
		}
		pl := plans.last()
		all := map[int]bool{}
		for _, q := range append(append([]int(nil), pl["a"]...), pl["b"]...) {
			all[q] = true
		}
		if len(all) != 4 {
			c.Fail("%s: final plan %v overlaps or misses partitions", name, pl)
		}
		c.Log("%s: %v in %.1fs", name, pl, time.Since(t0).Seconds())
		results = append(results, fmt.Sprintf("%s %v/%v", name, pl["a"], pl["b"]))
		a.stop()
		b.stop()
	}
	c.Pass("%s (plans computed by the leader; kafka-go 0.2.1 exposes no assignment to members)", strings.Join(results, "; "))
}
