// Package gocompat holds what the Go client columns (compat-tests/sarama,
// compat-tests/kafka_go) share: the scenario contract (environment, verdict lines,
// exit codes), the data sets of lib/compat.py reimplemented with Go's PRNG (same
// shapes, not the same bytes), first-difference reporting, and a broker owned by one
// scenario (lib/broker.py). Standard library only.
//
// Contract (see compat-tests/run): `<binary> <scenario>` with env STROM_BOOTSTRAP
// (host:port), COMPAT_TOPIC (unique topic prefix) and, when the runner started the
// broker, STROM_BIN. Exit 0 pass (last line `PASS: ...`), 1 fail (`FAIL: <first
// difference>`), 3 unsupported (`UNSUPPORTED: <reason>`).
package gocompat

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

const (
	ExitPass        = 0
	ExitFail        = 1
	ExitUnsupported = 3
)

var (
	exitMu    sync.Mutex
	atExit    []func()
	exiting   bool
	startTime = time.Now()
)

// AtExit registers cleanup (e.g. stopping an own broker) run before any verdict exit.
func AtExit(f func()) {
	exitMu.Lock()
	atExit = append(atExit, f)
	exitMu.Unlock()
}

func finish(code int, prefix, msg string) {
	exitMu.Lock()
	if exiting {
		// Another goroutine is already reporting a verdict; let it win.
		exitMu.Unlock()
		select {}
	}
	exiting = true
	fns := atExit
	exitMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	fmt.Fprintf(os.Stdout, "%s: %s\n", prefix, msg)
	os.Stdout.Sync()
	os.Exit(code)
}

// Fail prints `FAIL: msg` and exits 1. Safe from any goroutine.
func Fail(format string, a ...interface{}) { finish(ExitFail, "FAIL", fmt.Sprintf(format, a...)) }

// Unsupported prints `UNSUPPORTED: msg` and exits 3.
func Unsupported(format string, a ...interface{}) {
	finish(ExitUnsupported, "UNSUPPORTED", fmt.Sprintf(format, a...))
}

// Pass prints `PASS: msg` and exits 0.
func Pass(format string, a ...interface{}) { finish(ExitPass, "PASS", fmt.Sprintf(format, a...)) }

// Log prints a timestamped progress line.
func Log(format string, a ...interface{}) {
	fmt.Fprintf(os.Stdout, "[%s +%5.1fs] %s\n", time.Now().Format("15:04:05"), time.Since(startTime).Seconds(),
		fmt.Sprintf(format, a...))
}

// Watchdog fails the scenario with a clear message if it runs longer than d (the
// runner's own timeout is much longer and only says "timed out").
func Watchdog(d time.Duration, what string) {
	go func() {
		time.Sleep(d)
		Fail("%s: scenario did not finish within %s", what, d)
	}()
}

// Bootstrap is STROM_BOOTSTRAP (fails when unset).
func Bootstrap() string {
	b := os.Getenv("STROM_BOOTSTRAP")
	if b == "" {
		Fail("STROM_BOOTSTRAP is not set (run scenarios through compat-tests/run)")
	}
	return b
}

// Topic is COMPAT_TOPIC + suffix (an ad-hoc unique name outside the runner).
func Topic(suffix string) string {
	base := os.Getenv("COMPAT_TOPIC")
	if base == "" {
		base = fmt.Sprintf("compat-adhoc-%d-%d", os.Getpid(), time.Now().Unix())
	}
	return base + suffix
}

// Deadline is a point in time to give up at.
type Deadline time.Time

func NewDeadline(d time.Duration) Deadline { return Deadline(time.Now().Add(d)) }
func (d Deadline) Expired() bool           { return !time.Now().Before(time.Time(d)) }
func (d Deadline) Left() time.Duration {
	l := time.Until(time.Time(d))
	if l < 0 {
		return 0
	}
	return l
}

// Short renders bytes readably (nil shown as null), truncated, with the length.
func Short(b []byte) string {
	if b == nil {
		return "null"
	}
	const limit = 48
	head := b
	more := ""
	if len(b) > limit {
		head = b[:limit]
		more = fmt.Sprintf("...(+%d bytes)", len(b)-limit)
	}
	return fmt.Sprintf("%q%s [len=%d]", head, more, len(b))
}

// SameBytes is byte equality that also tells null (nil) from empty.
func SameBytes(a, b []byte) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return bytes.Equal(a, b)
}

// Header is one record header; Value nil means a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Rec is a record as produced or consumed; fields a scenario does not check stay zero.
type Rec struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	TS        int64 // CreateTime, ms
	Headers   []Header
}

func headersString(h []Header) string {
	parts := make([]string, len(h))
	for i, x := range h {
		parts[i] = fmt.Sprintf("%q=%s", x.Key, Short(x.Value))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func sameHeaders(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !SameBytes(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// RecDiff describes how got differs from exp field by field ("" if equal).
func RecDiff(exp, got Rec) string {
	var d []string
	if exp.Partition != got.Partition {
		d = append(d, fmt.Sprintf("partition: expected %d, got %d", exp.Partition, got.Partition))
	}
	if exp.Offset != got.Offset {
		d = append(d, fmt.Sprintf("offset: expected %d, got %d", exp.Offset, got.Offset))
	}
	if !SameBytes(exp.Key, got.Key) {
		d = append(d, fmt.Sprintf("key: expected %s, got %s", Short(exp.Key), Short(got.Key)))
	}
	if !SameBytes(exp.Value, got.Value) {
		d = append(d, fmt.Sprintf("value: expected %s, got %s", Short(exp.Value), Short(got.Value)))
	}
	if exp.TS != got.TS {
		d = append(d, fmt.Sprintf("timestamp: expected %d, got %d", exp.TS, got.TS))
	}
	if !sameHeaders(exp.Headers, got.Headers) {
		d = append(d, fmt.Sprintf("headers: expected %s, got %s", headersString(exp.Headers), headersString(got.Headers)))
	}
	return strings.Join(d, "; ")
}

func (r Rec) String() string {
	s := fmt.Sprintf("p%d@%d key=%s value=%s", r.Partition, r.Offset, Short(r.Key), Short(r.Value))
	if r.TS != 0 {
		s += fmt.Sprintf(" ts=%d", r.TS)
	}
	if len(r.Headers) > 0 {
		s += " headers=" + headersString(r.Headers)
	}
	return s
}

// FirstDiff compares two record sequences and describes the first difference
// (index, expected vs got) or a length mismatch; "" when equal.
func FirstDiff(exp, got []Rec, what string) string {
	n := len(exp)
	if len(got) < n {
		n = len(got)
	}
	for i := 0; i < n; i++ {
		if d := RecDiff(exp[i], got[i]); d != "" {
			return fmt.Sprintf("first differing %s at index %d of %d/%d: %s", what, i, len(exp), len(got), d)
		}
	}
	if len(got) < len(exp) {
		return fmt.Sprintf("got %d %ss, expected %d; first missing at index %d: %s", len(got), what, len(exp), n, exp[n])
	}
	if len(got) > len(exp) {
		return fmt.Sprintf("got %d %ss, expected %d; first extra at index %d: %s", len(got), what, len(exp), n, got[n])
	}
	return ""
}

// FirstDiffInts is FirstDiff for offsets and the like.
func FirstDiffInts(exp, got []int64, what string) string {
	n := len(exp)
	if len(got) < n {
		n = len(got)
	}
	for i := 0; i < n; i++ {
		if exp[i] != got[i] {
			return fmt.Sprintf("first differing %s at index %d of %d/%d: expected %d, got %d", what, i, len(exp), len(got), exp[i], got[i])
		}
	}
	if len(got) != len(exp) {
		return fmt.Sprintf("got %d %ss, expected %d", len(got), what, len(exp))
	}
	return ""
}

// Range returns [from, to).
func Range(from, to int64) []int64 {
	out := make([]int64, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// Upstream turns a Debian package version (1.22.1-1, 0.2.1-1.1) into the upstream
// version (1.22.1, 0.2.1).
func Upstream(debVersion string) string {
	if i := strings.LastIndex(debVersion, "-"); i > 0 {
		return debVersion[:i]
	}
	return debVersion
}
