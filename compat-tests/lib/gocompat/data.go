package gocompat

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// NMessages is COMPAT_MESSAGES (default 10,000), like lib/compat.py.
func NMessages() int {
	if s := os.Getenv("COMPAT_MESSAGES"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 10000
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

// AutoDataset is the produce-consume-auto data set (lib/compat.py auto_dataset):
// distinct keys key-000000...; value 0 = all 256 byte values, value 1 = empty (not
// null), a few ~10 KB random values, every 10th a run of 0x00 then 0xff, the others
// random bytes (1..300) prefixed with the index.
func AutoDataset(n int, seed int64) []Rec {
	r := rand.New(rand.NewSource(seed))
	big := map[int]bool{2: true, 3: true, n / 2: true, n - 1: true, n / 3: true}
	out := make([]Rec, n)
	for i := 0; i < n; i++ {
		var v []byte
		switch {
		case i == 0:
			v = make([]byte, 256)
			for j := range v {
				v[j] = byte(j)
			}
		case i == 1:
			v = []byte{}
		case big[i]:
			v = append([]byte(fmt.Sprintf("big-%06d:", i)), randBytes(r, 10*1024)...)
		case i%10 == 0:
			v = append(bytesOf(0x00, 1+r.Intn(50)), bytesOf(0xff, 1+r.Intn(50))...)
		default:
			v = append([]byte(fmt.Sprintf("%06d:", i)), randBytes(r, 1+r.Intn(300))...)
		}
		out[i] = Rec{Key: []byte(fmt.Sprintf("key-%06d", i)), Value: v}
	}
	return out
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// KeyedDataset is the produce-consume-explicit data set: nkeys distinct keys
// (k0000...) repeating, each value unique and starting with its index.
func KeyedDataset(n, nkeys int, seed int64) []Rec {
	r := rand.New(rand.NewSource(seed))
	out := make([]Rec, n)
	for i := 0; i < n; i++ {
		out[i] = Rec{Key: []byte(fmt.Sprintf("k%04d", i%nkeys)),
			Value: append([]byte(fmt.Sprintf("msg-%06d|", i)), randBytes(r, r.Intn(65))...)}
	}
	return out
}

// HeadersDataset is the headers-timestamps data set: n records with headers (none,
// duplicate names in order, empty and binary values, non-ASCII names, optionally a
// null value) and explicit, non-monotonic, distinct CreateTime timestamps.
func HeadersDataset(n int, allowNullHeaderValue bool, baseTS int64) []Rec {
	r := rand.New(rand.NewSource(777))
	all := make([]byte, 256)
	for j := range all {
		all[j] = byte(j)
	}
	out := make([]Rec, n)
	for i := 0; i < n; i++ {
		var h []Header
		switch i % 6 {
		case 0:
		case 1:
			h = []Header{{"trace-id", []byte(fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()))}}
		case 2:
			h = []Header{{"dup", []byte("first")}, {"dup", []byte("second")}, {"other", []byte("x")}, {"dup", []byte("third")}}
		case 3:
			h = []Header{{"empty", []byte{}}, {"bin", all}}
		case 4:
			h = []Header{{"n\u00e4me-\u00fcnicode", []byte("v\u00e4lue")}, {"i", []byte(strconv.Itoa(i))}}
		default:
			for j := 1; j <= 8; j++ {
				h = append(h, Header{fmt.Sprintf("h%d", j), bytesOf(byte(j), j)})
			}
			if allowNullHeaderValue {
				h = append(h, Header{"null-value", nil})
			}
		}
		ts := baseTS + int64((i*7919)%n)*1000 + int64(i)
		out[i] = Rec{Key: []byte(fmt.Sprintf("hk-%04d", i)), Value: []byte(fmt.Sprintf("hv-%04d", i)), Headers: h, TS: ts}
	}
	return out
}

// LargeValueSize is the large-messages value size (1 MiB).
const LargeValueSize = 1 << 20

// LargeDataset: 8 records, keys large-0..large-7, values of exactly 1 MiB of seeded
// pseudo-random (incompressible) bytes, all different.
func LargeDataset() []Rec {
	r := rand.New(rand.NewSource(1048576))
	out := make([]Rec, 8)
	for i := range out {
		out[i] = Rec{Key: []byte(fmt.Sprintf("large-%d", i)), Value: randBytes(r, LargeValueSize)}
	}
	return out
}

// CompressibleDataset is the compression data set: n keyed records key-%06d whose
// values repeat their index.
func CompressibleDataset(n int) []Rec {
	out := make([]Rec, n)
	for i := 0; i < n; i++ {
		out[i] = Rec{Key: []byte(fmt.Sprintf("key-%06d", i)),
			Value: []byte(strings.Repeat(fmt.Sprintf("value-%06d;", i), 16))}
	}
	return out
}

// SeekBase is T0 of seek-timestamp: now - 1 h, rounded down to the second, in ms.
func SeekBase() int64 {
	return (time.Now().Add(-time.Hour).Unix()) * 1000
}

// SeekDataset: 100 records with CreateTime T0 + 1000*i.
func SeekDataset(t0 int64) []Rec {
	out := make([]Rec, 100)
	for i := range out {
		out[i] = Rec{Offset: int64(i), Key: []byte(fmt.Sprintf("ts-%03d", i)), Value: []byte(fmt.Sprintf("at-%d", i)),
			TS: t0 + 1000*int64(i)}
	}
	return out
}

// IdempotentDataset: n records key-%04d (i % 100) / value-%06d.
func IdempotentDataset(n int) []Rec {
	out := make([]Rec, n)
	for i := 0; i < n; i++ {
		out[i] = Rec{Key: []byte(fmt.Sprintf("key-%04d", i%100)), Value: []byte(fmt.Sprintf("value-%06d", i))}
	}
	return out
}

// Report is where the producer says a record went.
type Report struct {
	Partition int32
	Offset    int64
}

// ExpectedByPartition turns produced records and their reports into the expected
// per-partition contents (with offsets), checking each key stayed on one partition and
// that keys spread over every partition.
func ExpectedByPartition(data []Rec, reports []Report, npart int) map[int32][]Rec {
	exp := map[int32][]Rec{}
	for q := 0; q < npart; q++ {
		exp[int32(q)] = nil
	}
	keyPart := map[string]int32{}
	for i, r := range data {
		rep := reports[i]
		if rep.Partition < 0 || int(rep.Partition) >= npart {
			Fail("message %d delivered to partition %d, topic has %d", i, rep.Partition, npart)
		}
		if p, ok := keyPart[string(r.Key)]; ok && p != rep.Partition {
			Fail("key %q delivered to partitions %d and %d", r.Key, p, rep.Partition)
		}
		keyPart[string(r.Key)] = rep.Partition
		exp[rep.Partition] = append(exp[rep.Partition], Rec{Partition: rep.Partition, Offset: rep.Offset, Key: r.Key, Value: r.Value})
	}
	var empty []int
	for q := 0; q < npart; q++ {
		if len(exp[int32(q)]) == 0 {
			empty = append(empty, q)
		}
	}
	if len(empty) > 0 {
		Fail("keys did not spread: partitions %v got no messages", empty)
	}
	return exp
}

// CheckPartitions: what was consumed per partition equals what was produced, offsets
// contiguous from 0, and (earliest, latest) offsets are (0, count).
func CheckPartitions(exp, got map[int32][]Rec, watermarks map[int32][2]int64) {
	parts := make([]int, 0, len(exp))
	for q := range exp {
		parts = append(parts, int(q))
	}
	sort.Ints(parts)
	for _, qi := range parts {
		q := int32(qi)
		want := exp[q]
		if d := FirstDiff(want, got[q], fmt.Sprintf("message (offset, key, value) of partition %d", q)); d != "" {
			Fail("%s", d)
		}
		offs := make([]int64, len(want))
		for i, r := range want {
			offs[i] = r.Offset
		}
		if d := FirstDiffInts(Range(0, int64(len(want))), offs, "offset"); d != "" {
			Fail("partition %d offsets not contiguous from 0: %s", q, d)
		}
		if wm := watermarks[q]; wm != [2]int64{0, int64(len(want))} {
			Fail("partition %d (earliest, latest) offsets: expected (0, %d), got (%d, %d)", q, len(want), wm[0], wm[1])
		}
	}
	for q := range got {
		if _, ok := exp[q]; !ok {
			Fail("records from unexpected partition %d", q)
		}
	}
}
