package server

import (
	"context"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// TestSourceStatusesFromReports checks the sources page's numbers when the
// receivers run elsewhere: the source reports of every receiver instance
// in samsa.stats are summed (reports that counted an earlier source of the
// same name left out), and the metrics of a receiver in this process are
// used only until the first report arrives, never added to the reports.
func TestSourceStatusesFromReports(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)
	ctx, cancel := context.WithTimeout(as(adminTok), 60*time.Second)
	defer cancel()

	src, other := uniqueName("ingest"), uniqueName("quiet")
	for _, name := range []string{src, other} {
		if _, err := in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: httpFlow(uniqueName("ingest-flow"), src)}); err != nil {
		t.Fatal(err)
	}
	got, err := in.src.GetSource(ctx, &samsav1.GetSourceRequest{Name: src})
	if err != nil {
		t.Fatal(err)
	}
	created := got.GetCreateTime().AsTime()
	if got.GetCreateTime() == nil {
		t.Fatal("source without a creation time")
	}

	list := func() *samsav1.ListSourceStatusesResponse {
		t.Helper()
		code, body := in.rest(t, "GET", "/v1/sourcestatuses", viewerTok, "")
		var sl samsav1.ListSourceStatusesResponse
		if err := protojson.Unmarshal(body, &sl); err != nil || code != http.StatusOK {
			t.Fatalf("GET /v1/sourcestatuses: %d %s %v", code, body, err)
		}
		return &sl
	}
	statusOf := func(sl *samsav1.ListSourceStatusesResponse, name string) *samsav1.SourceStatus {
		for _, s := range sl.GetStatuses() {
			if s.GetName() == name {
				return s
			}
		}
		t.Fatalf("source %s not listed: %v", name, sl)
		return nil
	}

	// No reports, no receiver here: unknown.
	if sl := list(); sl.GetIngestKnown() || statusOf(sl, src).GetEvents() != 0 {
		t.Fatalf("without receivers: %v", sl)
	}
	// A receiver in this process (samsa dev) that has not published yet.
	ev := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samsa_receiver_events_total"}, []string{"source"})
	in.reg.MustRegister(ev, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "samsa_receiver_buffered_bytes"}, func() float64 { return 0 }))
	ev.WithLabelValues(src).Add(7)
	if sl := list(); !sl.GetIngestKnown() || statusOf(sl, src).GetEvents() != 7 {
		t.Fatalf("with in-process metrics: %v", sl)
	}

	// Reports of two receiver replicas, one of them restarted (a third
	// instance), and one that counted an earlier source of the same name.
	report := func(instance string, created time.Time, count func(c *stats.SourceCounter)) *kgo.Record {
		r := stats.NewSourceRecorder(instance)
		count(r.Source(src, created))
		recs := r.Records(time.Now(), true)
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		recs[0].Topic = e.stats
		return recs[0]
	}
	recs := []*kgo.Record{
		report("rx-a", created, func(c *stats.SourceCounter) {
			c.Request(100)
			c.Events(10)
			c.Request(5)
			c.Rejection("malformed")
		}),
		report("rx-b", created, func(c *stats.SourceCounter) {
			c.Request(40)
			c.Events(4)
			c.Request(3)
			c.Rejection("unauthenticated")
			c.AuthFailure("invalid_api_key")
		}),
		report("rx-b2", created, func(c *stats.SourceCounter) {
			c.Request(7)
			c.Rejection("malformed")
		}),
		report("rx-gone", created.Add(-time.Hour), func(c *stats.SourceCounter) {
			c.Request(1000)
			c.Events(1000)
		}),
	}
	cl, err := e.kcfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wantRej := map[string]int64{"malformed": 2, "unauthenticated": 1}
	wantAuth := map[string]int64{"invalid_api_key": 1}
	var st *samsav1.SourceStatus
	var sl *samsav1.ListSourceStatusesResponse
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		sl = list()
		st = statusOf(sl, src)
		if st.GetRequests() == 5 || time.Now().After(deadline) {
			break
		}
	}
	// 14 events from the reports, not 21: the in-process metrics are not
	// added to them.
	if !sl.GetIngestKnown() || st.GetEvents() != 14 || st.GetRequests() != 5 || st.GetBytes() != 155 ||
		!maps.Equal(st.GetRejections(), wantRej) || !maps.Equal(st.GetAuthFailures(), wantAuth) || st.GetFlows() != 1 {
		t.Fatalf("source status from reports: %v (known %v)", st, sl.GetIngestKnown())
	}
	if q := statusOf(sl, other); q.GetEvents() != 0 || q.GetRequests() != 0 || len(q.GetRejections()) != 0 {
		t.Fatalf("a source without reports: %v", q)
	}
}
