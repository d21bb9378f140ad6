package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestDownsample(t *testing.T) {
	h := make([]stats.Sample, 10)
	for i := range h {
		h[i].Counts.Received = int64(i)
	}
	cases := []struct {
		points int
		want   []int64
	}{
		{-1, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{20, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{10, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{4, []int64{0, 3, 6, 9}},
		{2, []int64{0, 9}},
		{1, []int64{9}},
	}
	for _, c := range cases {
		got := downsample(h, c.points)
		var recv []int64
		for _, s := range got {
			recv = append(recv, s.Counts.Received)
		}
		if len(recv) != len(c.want) {
			t.Errorf("points %d: got %v, want %v", c.points, recv, c.want)
			continue
		}
		for i := range recv {
			if recv[i] != c.want[i] {
				t.Errorf("points %d: got %v, want %v", c.points, recv, c.want)
				break
			}
		}
	}
}

// TestDashboardAPI checks the calls behind the dashboard: one listing of
// every flow's status that agrees with GetFlowStatus (counts, history, DLQ
// depth), the caller's role, and the sources with the receiver's numbers.
func TestDashboardAPI(t *testing.T) {
	e := newEnv(t)
	group := kafkatest.Topic(t) + ".deliverers"
	in := e.start(t, func(c *Config) { c.DelivererGroup = group })
	ctx, cancel := context.WithTimeout(as(adminTok), 60*time.Second)
	defer cancel()

	src := uniqueName("dash")
	if _, err := in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src}}); err != nil {
		t.Fatal(err)
	}
	names := []string{uniqueName("dash-a"), uniqueName("dash-b"), uniqueName("dash-c")}
	for _, n := range names {
		if _, err := in.flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: httpFlow(n, src)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.flows.PauseFlow(ctx, &samsav1.PauseFlowRequest{Name: names[2]}); err != nil {
		t.Fatal(err)
	}
	cl, err := e.kcfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Statistics of names[0], sampled three times (the aggregator's own
	// sampling may add more samples of the last counts): received from
	// the transformer's reports, delivered from the metadata of the
	// deliverer group's committed offsets; two dead letters of names[1].
	for i := int64(1); i <= 3; i++ {
		in.srv.agg.Apply(stats.Report{Flow: names[0], Service: "transformer", Instance: "x", Counts: stats.Counts{Received: 10 * i, Transformed: 10 * i}})
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: kafka.DeliveryTopic(names[0]), Partition: 0, At: 0, LeaderEpoch: -1,
			Metadata: stats.CommitMetadata(stats.Counts{Delivered: 10*i - 1})})
		if err := kadm.NewClient(cl).CommitAllOffsets(ctx, group, offs); err != nil {
			t.Fatal(err)
		}
		if err := in.srv.agg.RefreshCommitted(ctx); err != nil {
			t.Fatal(err)
		}
		in.srv.agg.Sample()
	}
	dlqTopic := kafka.DLQTopic(names[1])
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: dlqTopic, Value: []byte("a")}, &kgo.Record{Topic: dlqTopic, Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	code, body := in.rest(t, "GET", "/v1/flowstatuses?source="+src+"&historyPoints=2", viewerTok, "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/flowstatuses: %d %s", code, body)
	}
	var list struct {
		Statuses []struct {
			Name     string
			State    string
			DlqDepth string
			Counts   map[string]string
			History  []map[string]any
		}
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Statuses) != 3 {
		t.Fatalf("%d statuses, want 3: %s", len(list.Statuses), body)
	}
	byName := map[string]int{}
	for i, st := range list.Statuses {
		byName[st.Name] = i
	}
	a, b, c := list.Statuses[byName[names[0]]], list.Statuses[byName[names[1]]], list.Statuses[byName[names[2]]]
	if a.Counts["received"] != "30" || a.Counts["delivered"] != "29" || a.Counts["inFlight"] != "1" {
		t.Errorf("counts of %s: %v", names[0], a.Counts)
	}
	if len(a.History) != 2 || a.History[0]["received"] != "10" || a.History[1]["received"] != "30" {
		t.Errorf("history of %s with 2 points: %v", names[0], a.History)
	}
	if b.DlqDepth != "2" {
		t.Errorf("dlq depth of %s = %q, want 2", names[1], b.DlqDepth)
	}
	if c.State != "paused" {
		t.Errorf("state of %s = %q, want paused", names[2], c.State)
	}
	// GetFlowStatus agrees, and keeps the whole history.
	stA, err := in.flows.GetFlowStatus(ctx, &samsav1.GetFlowStatusRequest{Name: names[0]})
	if err != nil {
		t.Fatal(err)
	}
	stB, err := in.flows.GetFlowStatus(ctx, &samsav1.GetFlowStatusRequest{Name: names[1]})
	if err != nil {
		t.Fatal(err)
	}
	if len(stA.GetHistory()) < 3 || stA.GetCounts().GetReceived() != 30 || stB.GetDlqDepth() != 2 {
		t.Errorf("GetFlowStatus: history %d received %d depth %d", len(stA.GetHistory()), stA.GetCounts().GetReceived(), stB.GetDlqDepth())
	}
	// Without historyPoints, no history: the overview stays small.
	_, m := in.restJSON(t, "GET", "/v1/flowstatuses?source="+src, viewerTok, "")
	if strings.Contains(mustJSON(t, m), "history") {
		t.Errorf("history sent without historyPoints")
	}

	// The caller's role.
	for tok, role := range map[string]string{adminTok: "admin", editorTok: "editor", viewerTok: "viewer"} {
		code, m := in.restJSON(t, "GET", "/v1/whoami", tok, "")
		if code != http.StatusOK || m["role"] != role {
			t.Errorf("whoami as %s: %d %v", role, code, m)
		}
	}
	if code, _ := in.rest(t, "GET", "/v1/whoami", "", ""); code != http.StatusUnauthorized {
		t.Errorf("whoami without a token: %d, want 401", code)
	}

	// Sources: without the receiver in this process, no ingest numbers.
	_, m = in.restJSON(t, "GET", "/v1/sourcestatuses", viewerTok, "")
	if m["ingestKnown"] == true {
		t.Errorf("ingest known without a receiver: %v", m)
	}
	// With the receiver's metrics in the gathered registry (samsa dev).
	rej := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samsa_receiver_rejections_total"}, []string{"source", "reason"})
	ev := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "samsa_receiver_events_total"}, []string{"source"})
	in.reg.MustRegister(rej, ev, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "samsa_receiver_buffered_bytes"}, func() float64 { return 0 }))
	rej.WithLabelValues(src, "malformed").Add(3)
	ev.WithLabelValues(src).Add(7)
	code, body = in.rest(t, "GET", "/v1/sourcestatuses", viewerTok, "")
	var sl samsav1.ListSourceStatusesResponse
	if err := protojson.Unmarshal(body, &sl); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/sourcestatuses: %d %s %v", code, body, err)
	}
	if !sl.GetIngestKnown() {
		t.Errorf("ingest not known with receiver metrics")
	}
	found := false
	for _, s := range sl.GetStatuses() {
		if s.GetName() == src {
			found = true
			if s.GetFlows() != 3 || s.GetEvents() != 7 || s.GetRejections()["malformed"] != 3 || s.GetTopic() != kafka.SourceTopic(src) {
				t.Errorf("source status: %v", s)
			}
		}
	}
	if !found {
		t.Errorf("source %s not listed", src)
	}
}

// TestDashboardServed checks that /ui/ serves the page, keeps it to its own
// origin, and that / leads there.
func TestDashboardServed(t *testing.T) {
	in := newEnv(t).start(t)
	req, _ := http.NewRequest("GET", in.base+"/ui/", nil)
	resp, err := in.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("/ui/: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(in.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("/: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
