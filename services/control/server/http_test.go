package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/samsa-dev/samsa/pkg/kafka"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestHTTPEndpoints(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)

	for _, p := range []string{"/healthz", "/readyz"} {
		if code, m := in.restJSON(t, "GET", p, "", ""); code != 200 {
			t.Errorf("%s: %d %v", p, code, m)
		}
	}
	code, b := in.rest(t, "GET", "/openapi.json", "", "")
	var spec struct {
		Swagger string                    `json:"swagger"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &spec); code != 200 || err != nil || spec.Swagger != "2.0" {
		t.Fatalf("openapi: %d %v", code, err)
	}
	for _, p := range []string{"/v1/sources/{name}", "/v1/flows/{name}:pause", "/v1/flows/{name}/dlq:redrive", "/v1/transforms:test"} {
		if spec.Paths[p] == nil {
			t.Errorf("openapi has no path %s", p)
		}
	}

	// Request ids: the caller's is echoed, otherwise one is made.
	req, _ := http.NewRequest("GET", in.base+"/v1/sources", nil)
	req.Header.Set("Authorization", "Bearer "+viewerTok)
	req.Header.Set("X-Request-Id", "my-request-1")
	resp, err := in.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "my-request-1" {
		t.Errorf("request id %q", resp.Header.Get("X-Request-Id"))
	}
	var hdr metadata.MD
	if _, err := in.src.ListSources(as(viewerTok), &samsav1.ListSourcesRequest{}, grpcHeader(&hdr)); err != nil || len(hdr.Get("x-request-id")) != 1 {
		t.Errorf("gRPC request id: %v %v", hdr, err)
	}

	// 401 carries WWW-Authenticate.
	resp, err = in.client.Get(in.base + "/v1/flows")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// Too large a body: 413 before anything is decoded.
	big := `{"description": "` + strings.Repeat("x", 2<<20) + `"}`
	if code, m := in.restJSON(t, "PUT", "/v1/sources/big", editorTok, big); code != http.StatusRequestEntityTooLarge || m["code"] != "RESOURCE_EXHAUSTED" {
		t.Errorf("large body: %d %v", code, m)
	}
	// Unknown paths and methods.
	if code, m := in.restJSON(t, "GET", "/nope", "", ""); code != 404 || m["code"] != "NOT_FOUND" {
		t.Errorf("unknown path: %d %v", code, m)
	}
	if code, _ := in.rest(t, "PATCH", "/v1/sources/x", editorTok, "{}"); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		t.Errorf("unknown method: %d", code)
	}

	// The topics of a source and a flow exist once they are put, with the
	// source's partitions and retention and a long retention for dead letters.
	src, fl := uniqueName("orders"), uniqueName("flow")
	if code, m := in.restJSON(t, "PUT", "/v1/sources/"+src, editorTok, `{"partitions": 3, "retention": "48h"}`); code != 200 {
		t.Fatalf("put source: %d %v", code, m)
	}
	if code, m := in.restJSON(t, "PUT", "/v1/flows/"+fl, editorTok, `{"source": "`+src+`", "destination": {"http": {"url": "https://x.example.com"}}}`); code != 200 {
		t.Fatalf("put flow: %d %v", code, m)
	}
	adm := kadm.NewClient(in.srv.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tds, err := adm.ListTopics(ctx, kafka.SourceTopic(src), kafka.DeliveryTopic(fl), kafka.DLQTopic(fl))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{kafka.SourceTopic(src), kafka.DeliveryTopic(fl), kafka.DLQTopic(fl)} {
		if td, ok := tds[name]; !ok || td.Err != nil || len(td.Partitions) != 3 {
			t.Errorf("topic %s: %+v", name, tds[name])
		}
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, kafka.SourceTopic(src), kafka.DLQTopic(fl))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{kafka.SourceTopic(src): "172800000", kafka.DLQTopic(fl): "2592000000"}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" && c.MaybeValue() != want[rc.Name] {
				t.Errorf("%s retention.ms %s, want %s", rc.Name, c.MaybeValue(), want[rc.Name])
			}
		}
	}
	// A changed retention is applied to the existing topic.
	if code, m := in.restJSON(t, "PUT", "/v1/sources/"+src, editorTok, `{"partitions": 3, "retention": "72h"}`); code != 200 || m["result"] != "updated" {
		t.Fatalf("update source: %d %v", code, m)
	}
	// Configs reach every broker's view a little later.
	eventually(t, 10*time.Second, "updated retention.ms 259200000", func() bool {
		rcs, err := adm.DescribeTopicConfigs(ctx, kafka.SourceTopic(src))
		if err != nil || len(rcs) != 1 {
			return false
		}
		for _, c := range rcs[0].Configs {
			if c.Key == "retention.ms" {
				return c.MaybeValue() == "259200000"
			}
		}
		return false
	})

	// Metrics count the calls.
	_, b = in.rest(t, "GET", "/metrics", "", "")
	for _, m := range []string{`samsa_control_requests_total{code="OK",method="SourceService/PutSource"}`, `samsa_control_writes_total{kind="flow",result="created"} 1`} {
		if !strings.Contains(string(b), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

func TestTransformTest(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)
	ctx := as(viewerTok)
	data := func(s string) *structpb.Value {
		v := &structpb.Value{}
		if err := v.UnmarshalJSON([]byte(s)); err != nil {
			t.Fatal(err)
		}
		return v
	}
	res, err := in.trans.Test(ctx, &samsav1.TestRequest{
		Filter: `event.type == "order.created"`,
		Transform: `def transform(event):
    return {"order": event.data["id"], "total": event.data["amount"] * 2}
`,
		Events: []*samsav1.TestEvent{
			{Type: "order.created", Data: data(`{"id": "o1", "amount": 21}`)},
			{Type: "order.deleted", Data: data(`{"id": "o2"}`)},
			{Type: "order.created", Data: data(`{"id": "o3"}`), Time: timestamppb.Now()},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Results
	if len(r) != 3 {
		t.Fatalf("results: %v", r)
	}
	if !r[0].Kept || len(r[0].Outputs) != 1 || r[0].Outputs[0].Data.GetStructValue().Fields["total"].GetNumberValue() != 42 {
		t.Errorf("event 1: %v", r[0])
	}
	if r[1].Kept || len(r[1].Outputs) != 0 || r[1].Error != "" {
		t.Errorf("event 2 (filtered out): %v", r[1])
	}
	if !strings.HasPrefix(r[2].Error, "transform: line 2") || !strings.Contains(r[2].Error, "amount") {
		t.Errorf("event 3 (runtime error): %v", r[2])
	}

	// A compile error is the request's error, naming the field.
	_, err = in.trans.Test(ctx, &samsav1.TestRequest{Transform: "def transform(event):\n    return amout\n", Events: []*samsav1.TestEvent{{}}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != "transform: line 2, column 12: undefined: amout" {
		t.Errorf("compile error: %v", err)
	}

	// The stored flow's code, by name.
	src := uniqueName("orders")
	if _, err := in.src.PutSource(as(editorTok), &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src}}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.flows.PutFlow(as(editorTok), &samsav1.PutFlowRequest{Flow: httpFlow("f1", src)}); err != nil {
		t.Fatal(err)
	}
	res, err = in.trans.Test(ctx, &samsav1.TestRequest{Flow: "f1", Events: []*samsav1.TestEvent{{Type: "order.created", Data: data(`{"id": "o1", "amount": 1}`)}}})
	if err != nil || res.Results[0].Outputs[0].Data.GetStructValue().Fields["total"].GetNumberValue() != 2 {
		t.Fatalf("stored flow: %v %v", res, err)
	}
	_, err = in.trans.Test(ctx, &samsav1.TestRequest{Flow: "nosuch"})
	wantCode(t, "unknown flow", err, codes.NotFound)
}

func grpcHeader(md *metadata.MD) grpc.CallOption { return grpc.Header(md) }
