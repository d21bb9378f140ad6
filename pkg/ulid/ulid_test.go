package ulid

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestMonotonicWithinMillisecond(t *testing.T) {
	var g Generator
	now := time.UnixMilli(1_700_000_000_000)
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = g.New(now)
	}
	if !slices.IsSorted(ids) {
		t.Fatal("ids of one millisecond are not sorted")
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatal("duplicate ids")
	}
	for _, id := range ids[:3] {
		if len(id) != Len {
			t.Fatalf("len(%q) = %d", id, len(id))
		}
		got, err := Time(id)
		if err != nil || !got.Equal(now) {
			t.Fatalf("Time(%q) = %v, %v; want %v", id, got, err, now)
		}
	}
}

func TestClockGoingBackStaysSorted(t *testing.T) {
	var g Generator
	a := g.New(time.UnixMilli(2_000_000))
	b := g.New(time.UnixMilli(1_000_000))
	if b <= a {
		t.Fatalf("id after a clock step back sorts first: %s <= %s", b, a)
	}
}

func TestSortsByTime(t *testing.T) {
	var g Generator
	a := g.New(time.UnixMilli(1_000))
	b := g.New(time.UnixMilli(1_001))
	if b <= a {
		t.Fatalf("%s <= %s", b, a)
	}
}

func TestOverflowBorrowsNextMillisecond(t *testing.T) {
	var g Generator
	now := time.UnixMilli(5_000)
	g.New(now)
	g.hi, g.lo = 0xffff, 0xffffffffffffffff
	id := g.New(now)
	got, err := Time(id)
	if err != nil || got.UnixMilli() != 5_001 {
		t.Fatalf("Time(%q) = %v, %v; want 5001 ms", id, got, err)
	}
}

func TestFillConcurrent(t *testing.T) {
	var g Generator
	var wg sync.WaitGroup
	out := make([][]string, 8)
	for i := range out {
		wg.Go(func() {
			out[i] = make([]string, 1000)
			g.Fill(time.Now(), out[i])
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, ids := range out {
		if !slices.IsSorted(ids) {
			t.Fatal("a filled batch is not sorted")
		}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate %s", id)
			}
			seen[id] = true
		}
	}
}

func TestTimeRejects(t *testing.T) {
	for _, s := range []string{"", "01ARZ3NDEKTSV4RRFFQ69G5FA", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU"} {
		if _, err := Time(s); err == nil {
			t.Errorf("Time(%q) accepted", s)
		}
	}
	if _, err := Time("01ARZ3NDEKTSV4RRFFQ69G5FAV"); err != nil {
		t.Errorf("Time of the spec's example: %v", err)
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	var g Generator
	for b.Loop() {
		g.New(time.Now())
	}
}

func BenchmarkFill100(b *testing.B) {
	b.ReportAllocs()
	var g Generator
	ids := make([]string, 100)
	for b.Loop() {
		g.Fill(time.Now(), ids)
	}
}
