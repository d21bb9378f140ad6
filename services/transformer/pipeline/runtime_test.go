package pipeline

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/event"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// position is where a source event sits.
type position struct {
	partition int32
	offset    int64
}

// TestRuntimeChanges changes flows while a stream is being transformed: a
// flow is added, changed, paused and deleted without a restart; failing
// events and undecodable records go to the dead-letter topics with their
// reason; the stream goes on.
func TestRuntimeChanges(t *testing.T) {
	e := newEnv(t)
	src := e.topic(3)
	e.putSource(&samsav1.Source{Name: "shop", Topic: src})
	a, b := flowName("a"), flowName("b")
	e.flowTopics(a, 3)
	e.flowTopics(b, 3)
	transformA := func(v int) string {
		return fmt.Sprintf(`def transform(event):
    d = event.data
    if d["n"] %% 50 == 7:
        fail("bad event %%d" %% d["n"])
    if d["n"] == 4321:
        while True:
            pass
    return {"n": d["n"], "v": %d}
`, v)
	}
	e.putFlow(&samsav1.Flow{Name: a, Source: "shop", Transform: transformA(1)})
	st := e.store()
	cfg := e.config("a")
	cfg.ScriptMaxSteps = 100_000
	cfg.ScriptTimeout = 5 * time.Second
	cfg.MaxBatch = 300 // many transactions, so that changes land mid-stream
	r := e.start(st, cfg)

	const total = 9000
	junk := map[int]bool{2500: true, 7000: true}
	var produced atomic.Int64
	// The producer holds at allowed until the test lets it go on: flow b
	// must be running before the stream moves past it, however long the
	// transformer takes to pick a new flow up on a busy machine.
	var allowed atomic.Int64
	allowed.Store(3000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i += 100 {
			for int64(i) >= allowed.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			recs := events("shop", i, 100, "")
			for j := range recs {
				if junk[i+j] {
					recs[j].Value = []byte("not an envelope")
				}
			}
			e.produce(src, recs)
			produced.Store(int64(i + 100))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	at := func(n int64) {
		waitFor(t, time.Minute, fmt.Sprintf("%d events produced", n), func() bool { return produced.Load() >= n })
	}
	at(1500)
	e.putFlow(&samsav1.Flow{Name: b, Source: "shop", Transform: "def transform(event):\n    return [event, {\"copy\": event.data[\"n\"]}]\n"})
	if got := e.read("samsa.out."+b, 1, time.Minute); len(got) == 0 {
		t.Fatal("flow b wrote nothing within a minute of its creation")
	}
	allowed.Store(total)
	at(3000)
	e.putFlow(&samsav1.Flow{Name: a, Source: "shop", Transform: transformA(2)})
	at(4500)
	e.putFlow(&samsav1.Flow{Name: b, Source: "shop", Paused: true, Transform: "def transform(event):\n    return [event, {\"copy\": event.data[\"n\"]}]\n"})
	at(6000)
	e.deleteFlow(b)
	<-done

	// Where every source event is.
	srcRecs := e.read(src, total, time.Minute)
	if len(srcRecs) != total {
		t.Fatalf("source topic has %d records, want %d", len(srcRecs), total)
	}
	pos := map[string]position{}
	for _, rec := range srcRecs {
		if ev, err := event.Decode(rec.Value); err == nil {
			pos[ev.ID] = position{rec.Partition, rec.Offset}
		}
	}

	// Flow a: every good event exactly once, v1 then v2 per partition.
	var wantA, wantDLQ []string
	for i := 0; i < total; i++ {
		id := fmt.Sprintf("e%07d", i)
		switch {
		case junk[i]:
		case i%50 == 7 || i == 4321:
			wantDLQ = append(wantDLQ, id)
		default:
			wantA = append(wantA, id)
		}
	}
	outA := e.read("samsa.out."+a, len(wantA), 2*time.Minute)
	checkExactlyOnce(t, "flow a", outA, wantA)
	type seen struct {
		offset int64
		v      int
	}
	byPart := map[int32][]seen{}
	versions := map[int]int{}
	for _, ev := range decodeAll(t, outA) {
		var d struct{ N, V int }
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		p := pos[ev.ID]
		byPart[p.partition] = append(byPart[p.partition], seen{p.offset, d.V})
		versions[d.V]++
		if ev.TraceParent == "" || ev.Type != "test.order" && ev.Type != "test.refund" {
			t.Fatalf("output %s lost the input's metadata: %+v", ev.ID, ev)
		}
	}
	if versions[1] == 0 || versions[2] == 0 {
		t.Fatalf("flow a outputs by version: %v; want both versions", versions)
	}
	for p, ss := range byPart {
		sort.Slice(ss, func(i, j int) bool { return ss[i].offset < ss[j].offset })
		for i := 1; i < len(ss); i++ {
			if ss[i].v < ss[i-1].v {
				t.Fatalf("partition %d: version went back from %d to %d at offset %d", p, ss[i-1].v, ss[i].v, ss[i].offset)
			}
		}
	}

	// Dead letters of flow a: failing events (transform), junk (decode).
	dl := e.read("samsa.dlq."+a, len(wantDLQ)+len(junk), time.Minute)
	var dlIDs []*kgo.Record
	decodeFailures := 0
	for _, rec := range dl {
		f := dlq.Parse(rec.Headers)
		if f.Flow != a || f.FlowVersion == 0 || f.Time.IsZero() || f.SourceTopic != src {
			t.Fatalf("dead letter headers: %+v", f)
		}
		switch f.Stage {
		case StageDecode:
			decodeFailures++
			if string(rec.Value) != "not an envelope" {
				t.Fatalf("decode dead letter value %q, want the raw record", rec.Value)
			}
		case "transform":
			ev, err := event.Decode(rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			if p := pos[ev.ID]; p.partition != f.SourcePartition || p.offset != f.SourceOffset {
				t.Fatalf("dead letter of %s says %d/%d, event is at %d/%d", ev.ID, f.SourcePartition, f.SourceOffset, p.partition, p.offset)
			}
			if ev.ID == "e0004321" {
				if !strings.Contains(f.Err, "step") {
					t.Fatalf("infinite loop dead-lettered with %q, want the step limit", f.Err)
				}
			} else if !strings.Contains(f.Err, "bad event") || !strings.Contains(f.Err, "line 4") {
				t.Fatalf("dead letter error %q, want the script's message and line", f.Err)
			}
			dlIDs = append(dlIDs, rec)
		default:
			t.Fatalf("unexpected stage %q", f.Stage)
		}
	}
	if decodeFailures != len(junk) {
		t.Fatalf("%d decode dead letters, want %d", decodeFailures, len(junk))
	}
	checkExactlyOnce(t, "flow a dead letters", dlIDs, wantDLQ)

	// Flow b: from when it was added until it was deleted, every event
	// (fanned out to two) exactly once, as one contiguous run of each
	// partition: nothing skipped, nothing repeated, paused or not.
	outB := e.read("samsa.out."+b, 1, time.Minute)
	evsB := decodeAll(t, outB)
	count := map[string]int{}
	runs := map[int32][]int64{}
	for _, ev := range evsB {
		count[ev.ID]++
		base, _, fanned := strings.Cut(ev.ID, "#")
		if fanned {
			continue
		}
		p, ok := pos[base]
		if !ok {
			t.Fatalf("flow b output %q is no source event", ev.ID)
		}
		runs[p.partition] = append(runs[p.partition], p.offset)
	}
	for id, n := range count {
		if n != 1 {
			t.Fatalf("flow b: %s written %d times", id, n)
		}
		if base, ok := strings.CutSuffix(id, "#1"); ok && count[base] != 1 {
			t.Fatalf("flow b: %s without %s", id, base)
		}
	}
	offsetsOf := map[int32][]int64{}
	for _, rec := range srcRecs {
		offsetsOf[rec.Partition] = append(offsetsOf[rec.Partition], rec.Offset)
	}
	fromB := 0
	for p, offs := range runs {
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		all := offsetsOf[p]
		i := sort.Search(len(all), func(i int) bool { return all[i] >= offs[0] })
		for j, o := range offs {
			// Junk records have no output but are part of the run.
			for i+j < len(all) && all[i+j] != o && isJunk(srcRecs, p, all[i+j]) {
				i++
			}
			if i+j >= len(all) || all[i+j] != o {
				t.Fatalf("flow b, partition %d: outputs are not a contiguous run of the source at offset %d", p, o)
			}
		}
		if last := offs[len(offs)-1]; last >= all[len(all)-1] {
			t.Fatalf("flow b, partition %d: still transforming at the end of the stream, after its deletion", p)
		}
		fromB += len(offs)
	}
	if fromB == 0 {
		t.Fatal("flow b produced nothing")
	}
	t.Logf("flow a: %d outputs (%v by version), %d dead letters; flow b: %d events", len(outA), versions, len(dl), fromB)
	r.stop(t)
}

func isJunk(recs []*kgo.Record, p int32, o int64) bool {
	for _, r := range recs {
		if r.Partition == p && r.Offset == o {
			return string(r.Value) == "not an envelope"
		}
	}
	return false
}
