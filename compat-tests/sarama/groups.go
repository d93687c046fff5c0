package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"

	c "stromcompat/gocompat"
)

// group-rebalance: three members (range assignor, Sarama's default) on a 6-partition
// topic get two partitions each; one leaves and the other two take its partitions
// over. Offsets are marked per record and committed by Sarama every 200 ms and once
// more when a session ends, before the member rejoins: that last commit reaches the
// coordinator while the group is PreparingRebalance, with the member's still-current
// generation, which Kafka accepts (ClassicGroup.validateOffsetCommit refuses only in
// CompletingRebalance, which cannot start before this member rejoins). So every
// record must be delivered exactly once overall, never to a member that does not
// own its partition, and every commit must succeed.
func groupRebalance() {
	topic := c.Topic("-grp")
	group := c.Topic("-group")
	createTopic(topic, 6, nil)
	first := make([]c.Rec, 600)
	for i := range first {
		first[i] = c.Rec{Partition: int32(i % 6), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("first-%d", i))}
	}
	produceAll(newConfig("compat-sarama"), topic, first, true)

	type key struct {
		p   int32
		off int64
	}
	own := newOwners()
	var mu sync.Mutex
	delivered := map[key]string{}
	commitErr := map[int32]string{} // first offset-commit failure per partition
	var firstCommitErr string
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(delivered) }

	makeHandler := func(name string) *handler {
		return &handler{
			setup: func(s sarama.ConsumerGroupSession) error {
				own.assign(name, s.Claims()[topic])
				c.Log("%s: generation %d, claims %v", name, s.GenerationID(), s.Claims()[topic])
				return nil
			},
			cleanup: func(s sarama.ConsumerGroupSession) error {
				own.revoke(name)
				return nil
			},
			claim: func(s sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
				for m := range cl.Messages() {
					if !own.owns(name, m.Partition) {
						c.Fail("%s got a record of partition %d it does not own (owners %s)", name, m.Partition, own)
					}
					k := key{m.Partition, m.Offset}
					mu.Lock()
					if prev, dup := delivered[k]; dup {
						why := commitErr[m.Partition]
						mu.Unlock()
						if why == "" {
							why = "no commit failure was reported"
						}
						c.Fail("record %d@%d delivered to %s and again to %s; its commit: %s", k.p, k.off, prev, name, why)
					}
					delivered[k] = name
					mu.Unlock()
					s.MarkMessage(m, "")
				}
				return nil
			},
		}
	}
	onErr := func(name string) func(error) {
		return func(err error) {
			if ce, ok := err.(*sarama.ConsumerError); ok && ce.Partition >= 0 {
				mu.Lock()
				msg := fmt.Sprintf("%s's OffsetCommit for partition %d was refused: %v (generation still current; "+
					"Kafka refuses commits only in CompletingRebalance)", name, ce.Partition, ce.Err)
				if commitErr[ce.Partition] == "" {
					commitErr[ce.Partition] = msg
				}
				if firstCommitErr == "" {
					firstCommitErr = msg
				}
				mu.Unlock()
			}
		}
	}

	t0 := time.Now()
	members := map[string]*member{}
	for _, n := range []string{"m1", "m2", "m3"} {
		members[n] = startMember(n, group, []string{topic}, groupConfig(n), makeHandler(n), onErr(n))
	}
	waitUntil(90*time.Second, func() string {
		return fmt.Sprintf("3 members with 2 partitions each and all 600 records; owners %s, delivered %d", own, count())
	}, func() bool { return count() == 600 && equalInts(own.loads(), []int{2, 2, 2}) })
	c.Log("3 members: %s after %.1fs", own, time.Since(t0).Seconds())

	c.Log("m3 leaves")
	members["m3"].stop()
	delete(members, "m3")
	own.drop("m3")
	second := make([]c.Rec, 600)
	for i := range second {
		second[i] = c.Rec{Partition: int32(i % 6), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("second-%d", i))}
	}
	produceAll(newConfig("compat-sarama"), topic, second, true)
	waitUntil(90*time.Second, func() string {
		return fmt.Sprintf("2 members with 3 partitions each and all 1200 records; owners %s, delivered %d", own, count())
	}, func() bool { return count() == 1200 && equalInts(own.loads(), []int{3, 3}) })
	final := own.String()
	m1, m2 := own.get("m1"), own.get("m2")
	for _, m := range members {
		m.stop()
	}
	seen := map[int32]bool{}
	for _, p := range append(m1, m2...) {
		if seen[p] {
			c.Fail("final assignment overlaps: %s", final)
		}
		seen[p] = true
	}
	if len(seen) != 6 {
		c.Fail("final assignment misses partitions: %s", final)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstCommitErr != "" {
		c.Fail("%s", firstCommitErr)
	}
	c.Pass("range: 2+2+2 then 3+3 %s; 1200 records each delivered once, every offset commit accepted", final)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// group-resume: a lone member marks 60 of 100 records (with commit metadata) and
// leaves (Sarama commits on release); the committed offset is 60; the broker (our own,
// from STROM_BIN) is restarted; a new member of the group resumes exactly at 60 and
// reads 60..99, nothing more. Reports subscribe -> first assignment time (classic:
// group.initial.rebalance.delay.ms = 3 s, plus the join).
func groupResume() {
	own := c.NewOwnBroker().Start()
	bootstrap = []string{own.Bootstrap()}
	topic := c.Topic("-resume")
	group := c.Topic("-resume-group")
	createTopic(topic, 1, nil)
	var recs []c.Rec
	for i := 0; i < 100; i++ {
		recs = append(recs, c.Rec{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	produceAll(newConfig("compat-sarama"), topic, recs, false)
	const meta = "sarama-resume-meta"

	// take runs a member until it has read n records (marking the first `mark` of
	// them); returns the offsets read and the subscribe -> assignment time.
	take := func(name string, n, mark int, extraWait time.Duration) ([]int64, time.Duration) {
		var mu sync.Mutex
		var offsets []int64
		var assigned time.Duration = -1
		start := time.Now()
		h := &handler{
			setup: func(s sarama.ConsumerGroupSession) error {
				mu.Lock()
				if assigned < 0 {
					assigned = time.Since(start)
				}
				mu.Unlock()
				return nil
			},
			claim: func(s sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
				for m := range cl.Messages() {
					mu.Lock()
					offsets = append(offsets, m.Offset)
					if len(offsets) <= mark {
						s.MarkMessage(m, meta)
					}
					mu.Unlock()
				}
				return nil
			},
		}
		mem := startMember(name, group, []string{topic}, groupConfig(name), h, nil)
		waitUntil(60*time.Second, func() string { return fmt.Sprintf("%s to read %d records", name, n) },
			func() bool { mu.Lock(); defer mu.Unlock(); return len(offsets) >= n })
		time.Sleep(extraWait)
		mem.stop()
		mu.Lock()
		defer mu.Unlock()
		return append([]int64(nil), offsets...), assigned
	}

	firstOffs, joinTime := take("first", 60, 60, 0)
	if d := c.FirstDiffInts(c.Range(0, 60), firstOffs[:60], "offset"); d != "" {
		c.Fail("first member: %s", d)
	}
	a := newAdmin(newConfig("compat-sarama-admin"))
	res, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	a.Close()
	if err != nil {
		c.Fail("ListConsumerGroupOffsets: %v", err)
	}
	b := res.GetBlock(topic, 0)
	if b == nil || b.Err != sarama.ErrNoError || b.Offset != 60 || b.Metadata != meta {
		c.Fail("committed offset after the first member left: %+v, expected offset 60 with metadata %q", b, meta)
	}

	c.Log("restarting the broker")
	own.Restart(false)
	rest, _ := take("second", 40, 40, 2*time.Second)
	if d := c.FirstDiffInts(c.Range(60, 100), rest, "offset after the restart"); d != "" {
		c.Fail("%s", d)
	}
	if joinTime > 8*time.Second {
		c.Fail("first assignment took %.2fs, far beyond the 3 s initial rebalance delay", joinTime.Seconds())
	}
	c.Pass("resumed at offset 60 (metadata %q) after restart; subscribe→assignment %.2fs (initial delay 3 s)",
		meta, joinTime.Seconds())
}

// group-assignors: for each assignor Sarama 1.22.1 has (range, roundrobin; no
// sticky), member a takes all 4 partitions, b joins, and they end with 2 each,
// disjoint and covering the topic, no partition ever owned by both at once.
func groupAssignors() {
	var results []string
	for _, st := range []sarama.BalanceStrategy{sarama.BalanceStrategyRange, sarama.BalanceStrategyRoundRobin} {
		topic := c.Topic("-" + st.Name())
		group := c.Topic("-" + st.Name() + "-group")
		createTopic(topic, 4, nil)
		own := newOwners()
		mk := func(name string) *member {
			cfg := groupConfig(name)
			cfg.Consumer.Group.Rebalance.Strategy = st
			h := &handler{
				setup:   func(s sarama.ConsumerGroupSession) error { own.assign(name, s.Claims()[topic]); return nil },
				cleanup: func(s sarama.ConsumerGroupSession) error { own.revoke(name); return nil },
			}
			return startMember(name, group, []string{topic}, cfg, h, nil)
		}
		t0 := time.Now()
		a := mk("a")
		waitUntil(60*time.Second, func() string { return st.Name() + ": a owning 4, owners " + own.String() },
			func() bool { return equalInts(own.loads(), []int{4}) })
		b := mk("b")
		waitUntil(60*time.Second, func() string { return st.Name() + ": loads 2/2, owners " + own.String() },
			func() bool { return equalInts(own.loads(), []int{2, 2}) })
		pa, pb := own.get("a"), own.get("b")
		all := map[int32]bool{}
		for _, p := range append(pa, pb...) {
			all[p] = true
		}
		if len(all) != 4 {
			c.Fail("%s: final assignment %s overlaps or misses partitions", st.Name(), own)
		}
		c.Log("%s: %s in %.1fs", st.Name(), own, time.Since(t0).Seconds())
		results = append(results, fmt.Sprintf("%s %v/%v", st.Name(), pa, pb))
		a.stop()
		b.stop()
	}
	c.Pass("%s (no sticky assignor in Sarama 1.22.1)", strings.Join(results, "; "))
}

// group-admin: over a live group: ListGroups, DescribeGroups (state, member client
// id, assignment), committed offsets (OffsetFetch), DeleteGroups refused with
// NON_EMPTY_GROUP while the member is there, accepted once it left.
func groupAdmin() {
	topic := c.Topic("-gadmin")
	group := c.Topic("-gadmin-group")
	createTopic(topic, 2, nil)
	var recs []c.Rec
	for i := 0; i < 10; i++ {
		recs = append(recs, c.Rec{Partition: int32(i % 2), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte("v")})
	}
	produceAll(newConfig("compat-sarama"), topic, recs, true)

	var mu sync.Mutex
	got := 0
	h := &handler{claim: func(s sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
		for m := range cl.Messages() {
			s.MarkMessage(m, "")
			mu.Lock()
			got++
			mu.Unlock()
		}
		return nil
	}}
	mem := startMember("admin-probe", group, []string{topic}, groupConfig("admin-probe"), h, nil)
	waitUntil(60*time.Second, func() string { return fmt.Sprintf("10 records consumed (got %d)", got) },
		func() bool { mu.Lock(); defer mu.Unlock(); return got >= 10 })

	a := newAdmin(newConfig("compat-sarama-admin"))
	defer a.Close()
	offsets := func() map[int32]int64 {
		res, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
		if err != nil {
			c.Fail("ListConsumerGroupOffsets: %v", err)
		}
		out := map[int32]int64{}
		for p, b := range res.Blocks[topic] {
			if b.Err != sarama.ErrNoError {
				c.Fail("ListConsumerGroupOffsets partition %d: %v", p, b.Err)
			}
			if b.Offset >= 0 {
				out[p] = b.Offset
			}
		}
		return out
	}
	// Sarama commits marked offsets every CommitInterval (200 ms here).
	var offs map[int32]int64
	waitUntil(10*time.Second, func() string { return fmt.Sprintf("committed offsets {0: 5, 1: 5}, have %v", offs) },
		func() bool { offs = offsets(); return offs[0] == 5 && offs[1] == 5 && len(offs) == 2 })

	groups, err := a.ListConsumerGroups()
	if err != nil {
		c.Fail("ListConsumerGroups: %v", err)
	}
	if groups[group] != "consumer" {
		c.Fail("ListConsumerGroups: %s has protocol type %q, expected \"consumer\" (listed: %d groups)", group, groups[group], len(groups))
	}
	desc, err := a.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 {
		c.Fail("DescribeConsumerGroups: %v (%d groups)", err, len(desc))
	}
	d := desc[0]
	if d.Err != sarama.ErrNoError || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 1 {
		c.Fail("DescribeConsumerGroups: error %v, state %q, protocol %q/%q, %d members; expected Stable consumer/range with 1 member",
			d.Err, d.State, d.ProtocolType, d.Protocol, len(d.Members))
	}
	for id, m := range d.Members {
		if m.ClientId != "admin-probe" {
			c.Fail("DescribeConsumerGroups: member %s has client id %q, expected admin-probe", id, m.ClientId)
		}
		asg, err := m.GetMemberAssignment()
		if err != nil {
			c.Fail("DescribeConsumerGroups: member assignment does not decode: %v", err)
		}
		if ps := asg.Topics[topic]; len(asg.Topics) != 1 || len(ps) != 2 || ps[0]+ps[1] != 1 {
			c.Fail("DescribeConsumerGroups: member assignment %v, expected %s: [0 1]", asg.Topics, topic)
		}
		meta, err := m.GetMemberMetadata()
		if err != nil || len(meta.Topics) != 1 || meta.Topics[0] != topic {
			c.Fail("DescribeConsumerGroups: member metadata %+v (%v), expected subscription [%s]", meta, err, topic)
		}
	}

	cl := newClient(newConfig("compat-sarama-admin"))
	defer cl.Close()
	// Sarama 1.22.1's ClusterAdmin has no DeleteConsumerGroup: DeleteGroups (v0) goes
	// through the coordinator's Broker API.
	deleteGroup := func() sarama.KError {
		coord, err := cl.Coordinator(group)
		if err != nil {
			c.Fail("Coordinator(%s): %v", group, err)
		}
		resp, err := coord.DeleteGroups(&sarama.DeleteGroupsRequest{Groups: []string{group}})
		if err != nil {
			c.Fail("DeleteGroups: %v", err)
		}
		return resp.GroupErrorCodes[group]
	}
	if e := deleteGroup(); e != sarama.ErrNonEmptyGroup {
		c.Fail("DeleteGroups of a group with a live member gave %v, expected NON_EMPTY_GROUP", e)
	}
	mem.stop()
	if e := deleteGroup(); e != sarama.ErrNoError {
		c.Fail("DeleteGroups after the member left gave %v", e)
	}
	if groups, err = a.ListConsumerGroups(); err != nil {
		c.Fail("ListConsumerGroups: %v", err)
	}
	if _, ok := groups[group]; ok {
		c.Fail("deleted group %s is still listed", group)
	}
	c.Pass("group listed, described (Stable, range, member admin-probe with [0 1]), offsets {0: 5, 1: 5}, " +
		"DeleteGroups refused while live (NON_EMPTY_GROUP) then done")
}
