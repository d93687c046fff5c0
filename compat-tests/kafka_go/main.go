// compat-kafka-go: the kafka-go column of the Strom compatibility matrix.
//
// segmentio/kafka-go 0.2.1 from Debian (golang-github-segmentio-kafka-go-dev, a 2018
// release), built by compat-tests/install.sh with Debian's Go in GOPATH mode. Usage:
//
//	compat-kafka-go <scenario>     env STROM_BOOTSTRAP, COMPAT_TOPIC (and STROM_BIN)
//	compat-kafka-go --version
//
// kafka-go 0.2.1 speaks fixed, old API versions and never asks the broker which ones
// it serves (no ApiVersions): Produce v2 with message format v1 (magic 1), Fetch v2,
// ListOffsets v1, Metadata v1, CreateTopics v0, DeleteTopics v1, FindCoordinator v0,
// JoinGroup v1, SyncGroup v0, Heartbeat v0, LeaveGroup v0, OffsetCommit v2,
// OffsetFetch v1. Kafka 4.0 removed Produce v0-2, Fetch v0-3 and CreateTopics v0-1
// (KIP-896) and closes the connection on them; so does Strom. The scenarios are
// written as a kafka-go user would write them and report what the broker does.
// KAFKA_GO_LOG=1 prints kafka-go's own logs.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	kafka "github.com/segmentio/kafka-go"

	c "stromcompat/gocompat"
)

// libVersion is the Debian package version, set by install.sh (-ldflags -X).
var libVersion = "unknown"

var scenarios = map[string]func(){
	"produce-consume-auto":     produceConsumeAuto,
	"produce-consume-explicit": produceConsumeExplicit,
	"headers-timestamps": func() {
		c.Unsupported("kafka-go 0.2.1 has no record headers: its Message has no Headers and it writes message format v1, which cannot carry them")
	},
	"large-messages": largeMessages,
	"compression":    compression,
	"seek-timestamp": seekTimestamp,
	"idempotent": func() {
		c.Unsupported("kafka-go 0.2.1 has no idempotent producer (no InitProducerId; message format v1 has no producer id or sequence)")
	},
	"metadata": metadata,
	"admin": func() {
		c.Unsupported("kafka-go 0.2.1 has no DescribeConfigs (its only admin calls are Conn.CreateTopics v0 and Conn.DeleteTopics v1)")
	},
	"admin-ops": func() {
		c.Unsupported("kafka-go 0.2.1 has no CreatePartitions, AlterConfigs or DeleteRecords")
	},
	"group-rebalance": groupRebalance,
	"group-resume":    groupResume,
	"group-assignors": groupAssignors,
	"group-admin": func() {
		c.Unsupported("kafka-go 0.2.1 has no public group admin API (ListGroups, DescribeGroups, OffsetFetch and DeleteGroups are unexported or absent)")
	},
	"group-regex": func() {
		c.Unsupported("kafka-go 0.2.1 has no regex subscription: a Reader reads one fixed topic")
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
		fmt.Printf("kafka-go %s (Debian golang-github-segmentio-kafka-go-dev %s, %s)\n", c.Upstream(libVersion), libVersion,
			runtime.Version())
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
	c.Watchdog(240*time.Second, os.Args[1])
	run()
	c.Fail("scenario %s returned without a verdict", os.Args[1])
}

var bootstrap []string

func addrs() []string {
	if bootstrap == nil {
		bootstrap = strings.Split(c.Bootstrap(), ",")
	}
	return bootstrap
}

// problems collects what went wrong in a cell, in order; the verdict lists them all.
type problems []string

func (p *problems) add(format string, a ...interface{}) {
	msg := fmt.Sprintf(format, a...)
	c.Log("problem: %s", msg)
	*p = append(*p, msg)
}

func (p problems) verdict(pass string, a ...interface{}) {
	if len(p) > 0 {
		c.Fail("%s", strings.Join(p, "; "))
	}
	c.Pass(pass, a...)
}

// errLog is a log.Logger sink that keeps kafka-go's last error line (and echoes it
// with KAFKA_GO_LOG=1).
type errLog struct {
	mu    sync.Mutex
	last  string
	count int
}

func (e *errLog) Write(b []byte) (int, error) {
	e.mu.Lock()
	e.last = strings.TrimSpace(string(b))
	e.count++
	e.mu.Unlock()
	if os.Getenv("KAFKA_GO_LOG") != "" {
		os.Stderr.Write(append([]byte("[kafka-go error] "), b...))
	}
	return len(b), nil
}

func (e *errLog) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.count == 0 {
		return "nothing logged"
	}
	return fmt.Sprintf("%q (%d error lines)", e.last, e.count)
}

func debugLogger(prefix string) *log.Logger {
	if os.Getenv("KAFKA_GO_LOG") == "" {
		return nil
	}
	return log.New(os.Stderr, "[kafka-go "+prefix+"] ", log.Ltime|log.Lmicroseconds)
}

func msTime(ms int64) time.Time { return time.Unix(ms/1000, (ms%1000)*int64(time.Millisecond)) }
func toMS(t time.Time) int64    { return t.UnixNano() / int64(time.Millisecond) }

// waitTopic waits until kafka-go's metadata (Conn.ReadPartitions, Metadata v1) shows
// `topic` with n partitions, each with a leader.
func waitTopic(topic string, n int) []kafka.Partition {
	dl := c.NewDeadline(30 * time.Second)
	seen := "nothing"
	for !dl.Expired() {
		conn, err := kafka.Dial("tcp", addrs()[0])
		if err != nil {
			seen = fmt.Sprintf("Dial: %v", err)
		} else {
			parts, err := conn.ReadPartitions(topic)
			conn.Close()
			ok := err == nil && len(parts) == n
			for _, p := range parts {
				ok = ok && p.Leader.Port > 0 && p.Leader.Host != ""
			}
			if ok {
				sort.Slice(parts, func(a, b int) bool { return parts[a].ID < parts[b].ID })
				return parts
			}
			seen = fmt.Sprintf("partitions %+v, error %v", parts, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.Fail("metadata (kafka-go ReadPartitions) for %s: expected %d partitions with leaders, last saw %s", topic, n, seen)
	return nil
}

// byKey routes each record to the partition given for its key (kafka-go's Writer
// picks partitions only through a Balancer; Message.Partition must stay 0).
func byKey(recs []c.Rec) kafka.Balancer {
	m := map[string]int{}
	for _, r := range recs {
		m[string(r.Key)] = int(r.Partition)
	}
	return kafka.BalancerFunc(func(msg kafka.Message, partitions ...int) int { return m[string(msg.Key)] })
}

// writeAll produces recs with a kafka-go Writer (Produce v2, message format v1) and
// returns the error WriteMessages gives, with the writer's last logged error.
func writeAll(topic string, recs []c.Rec, codec kafka.CompressionCodec, bal kafka.Balancer) error {
	el := &errLog{}
	w := kafka.NewWriter(kafka.WriterConfig{
		Brokers:          addrs(),
		Topic:            topic,
		Balancer:         bal,
		CompressionCodec: codec,
		BatchTimeout:     20 * time.Millisecond,
		Logger:           debugLogger("writer"),
		ErrorLogger:      log.New(el, "", 0),
	})
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafka.Message{Key: r.Key, Value: r.Value}
		if r.TS != 0 {
			msgs[i].Time = msTime(r.TS)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	err := w.WriteMessages(ctx, msgs...)
	w.Close()
	if err != nil {
		return fmt.Errorf("Writer.WriteMessages (Produce v2, message format v1) failed after %.1fs: %v; writer log: %s",
			time.Since(t0).Seconds(), err, el)
	}
	return nil
}

func fromMessage(m kafka.Message) c.Rec {
	return c.Rec{Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value, TS: toMS(m.Time)}
}

// readPartition reads n records of one partition from offset `from` with a kafka-go
// Reader (Fetch v2); an empty error string means all n arrived and nothing more
// within 300 ms.
func readPartition(topic string, partition int, from int64, n int, maxBytes int) ([]c.Rec, string) {
	el := &errLog{}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     addrs(),
		Topic:       topic,
		Partition:   partition,
		MinBytes:    1,
		MaxBytes:    maxBytes,
		MaxWait:     250 * time.Millisecond,
		Logger:      debugLogger("reader"),
		ErrorLogger: log.New(el, "", 0),
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return nil, fmt.Sprintf("Reader.SetOffset(%d): %v", from, err)
	}
	var out []c.Rec
	for len(out) <= n {
		wait := 6 * time.Second
		if len(out) == n {
			wait = 300 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			if len(out) == n {
				return out, ""
			}
			return out, fmt.Sprintf("Reader.ReadMessage (Fetch v2) on partition %d: %v after %d of %d records; reader log: %s",
				partition, err, len(out), n, el)
		}
		out = append(out, fromMessage(m))
	}
	return out, ""
}

// watermarks is (first, last) offset via kafka-go's Conn.ReadOffsets (ListOffsets v1).
func watermarks(topic string, partition int) ([2]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", addrs()[0], topic, partition)
	if err != nil {
		return [2]int64{}, err
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	return [2]int64{first, last}, err
}

var _ io.Writer = (*errLog)(nil)
