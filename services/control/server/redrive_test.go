package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestRedriveDLQ(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)
	ctx, cancel := context.WithTimeout(as(editorTok), time.Minute)
	defer cancel()
	src, fl := uniqueName("orders"), uniqueName("flow")
	if _, err := in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src, Partitions: 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: httpFlow(fl, src)}); err != nil {
		t.Fatal(err)
	}
	// Ten dead letters, half of type "a".
	cl := in.srv.admin
	base := time.Now().Add(-time.Hour).UTC()
	for i := range 10 {
		typ := "a"
		if i%2 == 1 {
			typ = "b"
		}
		v, err := event.Encode(&event.Event{ID: fmt.Sprintf("ev-%d", i), Source: src, Type: typ, Time: base, Data: []byte(`{}`), ContentType: "application/json"})
		if err != nil {
			t.Fatal(err)
		}
		f := dlq.Failure{Flow: fl, Stage: "deliver", Err: "HTTP 400", Time: base.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.DLQTopic(fl), Key: []byte(fmt.Sprint(i)), Value: v, Headers: f.Headers()}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// A filter that does not compile: InvalidArgument naming the field.
	st, err := in.flows.RedriveDLQ(ctx, &samsav1.RedriveDLQRequest{Name: fl, Filter: "event.type =="})
	if err == nil {
		_, err = st.Recv()
	}
	if s := status.Convert(err); s.Code() != codes.InvalidArgument || !strings.HasPrefix(s.Message(), "filter: line 1") {
		t.Fatalf("bad filter: %v", err)
	}

	// gRPC: the type "a" ones, with progress ending in done.
	st, err = in.flows.RedriveDLQ(ctx, &samsav1.RedriveDLQRequest{Name: fl, Filter: `event.type == "a"`})
	if err != nil {
		t.Fatal(err)
	}
	var last *samsav1.RedriveDLQProgress
	for {
		p, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = p
	}
	if last == nil || !last.Done || last.Total != 10 || last.Scanned != 10 || last.Redriven != 5 {
		t.Fatalf("last progress: %v", last)
	}
	if n := countRecords(t, ctx, cl, kafka.DeliveryTopic(fl)); n != 5 {
		t.Fatalf("%d records redriven to the delivery topic, want 5", n)
	}

	// REST: the rest (kept dead letters were moved to the end of the DLQ),
	// streamed as one JSON object per line.
	req, _ := http.NewRequest("POST", in.base+"/v1/flows/"+fl+"/dlq:redrive", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+editorTok)
	resp, err := in.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("REST redrive: %d", resp.StatusCode)
	}
	var lines []map[string]map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	end := lines[len(lines)-1]["result"]
	if end["done"] != true || end["redriven"] != "5" {
		t.Fatalf("REST redrive: %v", lines)
	}
	if n := countRecords(t, ctx, cl, kafka.DeliveryTopic(fl)); n != 10 {
		t.Fatalf("%d records in the delivery topic, want 10", n)
	}
}

// countRecords counts the committed records of topic.
func countRecords(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) int64 {
	t.Helper()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// Redriven records are written in transactions: read them to count
	// data records only, not markers.
	rc, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, _ := starts.Lookup(topic, o.Partition); o.Offset > s.Offset {
			want[o.Partition] = o.Offset
		}
	})
	var n int64
	for len(want) > 0 {
		fs := rc.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				n++
			}
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return n
}
