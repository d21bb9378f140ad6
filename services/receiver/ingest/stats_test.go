package ingest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/samsa-dev/samsa/pkg/stats"
)

// The receiver publishes each source's ingest counts to samsa.stats: the
// numbers its Prometheus metrics show, refusals by reason included; a
// deleted source's report is deleted, and a source created again under the
// same name starts from zero.
func TestSourceStatsPublished(t *testing.T) {
	h := newHarness(t, testBrokers(t), func(c *Config) { c.StatsInterval = 100 * time.Millisecond })
	agg, err := stats.NewAggregator(h.kcfg, zaptest.NewLogger(t), stats.Topic(h.stats))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	aggDone := make(chan struct{})
	go func() { defer close(aggDone); _ = agg.Run(ctx) }()
	defer func() { cancel(); <-aggDone }()

	created := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UTC()
	src := keyedSource(uniqueName("stats"))
	src.CreateTime = timestamppb.New(created)
	name := h.putSource(src).GetName()

	for i := 0; i < 3; i++ {
		h.mustAccept(name, "application/x-ndjson", []byte(strings.Repeat(`{"n":1}`+"\n", 4)), bearer...)
	}
	h.mustAccept(name, "application/json", []byte(`{"n":2}`), bearer...)
	for _, bad := range []struct {
		ct     string
		body   string
		hdr    []string
		status int
	}{
		{"application/json", `{"a" 1}`, bearer, http.StatusBadRequest},
		{"application/json", `[1,`, bearer, http.StatusBadRequest},
		{"text/plain", `{}`, bearer, http.StatusUnsupportedMediaType},
		{"application/json", `{}`, []string{"Authorization", "Bearer sk_not_the_key"}, http.StatusUnauthorized},
		{"application/json", `{}`, nil, http.StatusUnauthorized},
	} {
		if r := h.post(name, bad.ct, []byte(bad.body), bad.hdr...); r.status != bad.status {
			t.Fatalf("%s %s: %d, want %d: %s", bad.ct, bad.body, r.status, bad.status, r.raw)
		}
	}
	// Unknown sources are nobody's.
	if r := h.post(uniqueName("nope"), "application/json", []byte(`{}`), bearer...); r.status != http.StatusNotFound {
		t.Fatalf("unknown source: %d", r.status)
	}

	want := stats.Ingest{
		Events:       13,
		Requests:     9,
		Bytes:        int64(h.metric("samsa_receiver_bytes_total", map[string]string{"source": name})),
		Rejections:   map[string]int64{"malformed": 2, "content_type": 1, "unauthenticated": 2},
		AuthFailures: map[string]int64{"invalid_api_key": 1, "missing_credentials": 1},
	}
	if want.Bytes < 3*4*8+7 {
		t.Fatalf("bytes metric %d", want.Bytes)
	}
	// The metrics agree.
	for metric, n := range map[string]int64{"samsa_receiver_events_total": want.Events, "samsa_receiver_requests_total": want.Requests} {
		if got := h.metric(metric, map[string]string{"source": name}); int64(got) != n {
			t.Fatalf("%s = %v, want %d", metric, got, n)
		}
	}
	waitIngest(t, agg, name, created, "published", func(got stats.Ingest, ok bool) bool { return ok && got.Equal(want) })

	// Deleted: the report goes.
	h.deleteSource(name)
	waitIngest(t, agg, name, created, "deleted", func(_ stats.Ingest, ok bool) bool { return !ok })

	// Created again: from zero.
	again := keyedSource(name)
	again.CreateTime = timestamppb.New(created.Add(time.Minute))
	h.putSource(again)
	h.mustAccept(name, "application/json", []byte(`{"n":3}`), bearer...)
	waitIngest(t, agg, name, created.Add(time.Minute), "created again", func(got stats.Ingest, ok bool) bool {
		return ok && got.Events == 1 && got.Requests == 1 && len(got.Rejections) == 0
	})
}

// A receiver that stops publishes every source's counts, marked final,
// after its last request: a long interval leaves nothing else to publish.
func TestSourceStatsFinal(t *testing.T) {
	h := newHarness(t, testBrokers(t), func(c *Config) { c.StatsInterval = time.Hour })
	name := h.putSource(keyedSource(uniqueName("final"))).GetName()
	h.mustAccept(name, "application/x-ndjson", []byte("{}\n{}\n"), bearer...)
	if r := h.post(name, "application/json", []byte(`{`), bearer...); r.status != http.StatusBadRequest {
		t.Fatalf("malformed: %d", r.status)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	recs := readTopic(t, h.kcfg, h.stats, 1, 20*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%d stats records, want 1", len(recs))
	}
	rep, err := stats.ParseRecord(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != name || !rep.Final || rep.Ingest == nil || rep.Ingest.Events != 2 || rep.Ingest.Requests != 2 || rep.Ingest.Rejections["malformed"] != 1 {
		t.Fatalf("final report %+v (ingest %+v)", rep, rep.Ingest)
	}
}

func waitIngest(t *testing.T, agg *stats.Aggregator, source string, created time.Time, what string, ok func(stats.Ingest, bool) bool) {
	t.Helper()
	var got stats.Ingest
	var found bool
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sums, _ := agg.Ingest(map[string]time.Time{source: created})
		got, found = sums[source]
		if ok(got, found) {
			return
		}
	}
	t.Fatalf("%s: source %s has %+v (reported: %v)", what, source, got, found)
}
