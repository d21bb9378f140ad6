package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestCRUDOverGRPC(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)
	ctx := as(editorTok)
	src := uniqueName("orders")

	ps, err := in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src, Description: "shop"}})
	if err != nil || ps.Result != "created" || ps.Source.Version == 0 || ps.Source.Topic != "samsa.src."+src {
		t.Fatalf("put source: %v %v", ps, err)
	}
	got, err := in.src.GetSource(ctx, &samsav1.GetSourceRequest{Name: src})
	if err != nil || !proto.Equal(got, ps.Source) {
		t.Fatalf("get source: %v %v", got, err)
	}
	ls, err := in.src.ListSources(ctx, &samsav1.ListSourcesRequest{})
	if err != nil || len(ls.Sources) != 1 || ls.Sources[0].Name != src {
		t.Fatalf("list sources: %v %v", ls, err)
	}
	// Updated, then unchanged.
	ps2, err := in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src, Description: "shop v2", Version: ps.Source.Version}})
	if err != nil || ps2.Result != "updated" || ps2.Source.Version <= ps.Source.Version || !ps2.Source.CreateTime.AsTime().Equal(ps.Source.CreateTime.AsTime()) {
		t.Fatalf("update source: %v %v", ps2, err)
	}
	ps3, err := in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src, Description: "shop v2"}})
	if err != nil || ps3.Result != "unchanged" || ps3.Source.Version != ps2.Source.Version {
		t.Fatalf("unchanged source: %v %v", ps3, err)
	}

	fl := uniqueName("to-crm")
	pf, err := in.flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: httpFlow(fl, src)})
	if err != nil || pf.Result != "created" {
		t.Fatalf("put flow: %v %v", pf, err)
	}
	gf, err := in.flows.GetFlow(ctx, &samsav1.GetFlowRequest{Name: fl})
	if err != nil || !proto.Equal(gf, pf.Flow) {
		t.Fatalf("get flow: %v %v", gf, err)
	}
	for source, n := range map[string]int{"": 1, src: 1, "other": 0} {
		lf, err := in.flows.ListFlows(ctx, &samsav1.ListFlowsRequest{Source: source})
		if err != nil || len(lf.Flows) != n {
			t.Fatalf("list flows of %q: %v %v", source, lf, err)
		}
	}
	paused, err := in.flows.PauseFlow(ctx, &samsav1.PauseFlowRequest{Name: fl})
	if err != nil || !paused.Paused {
		t.Fatalf("pause: %v %v", paused, err)
	}
	st, err := in.flows.GetFlowStatus(ctx, &samsav1.GetFlowStatusRequest{Name: fl})
	if err != nil || st.State != "paused" {
		t.Fatalf("status: %v %v", st, err)
	}
	resumed, err := in.flows.ResumeFlow(ctx, &samsav1.ResumeFlowRequest{Name: fl})
	if err != nil || resumed.Paused || resumed.Version <= paused.Version {
		t.Fatalf("resume: %v %v", resumed, err)
	}

	// Conflicts, preconditions, not found.
	_, err = in.flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: func() *samsav1.Flow { f := httpFlow(fl, src); f.Version = pf.Flow.Version; return f }()})
	wantCode(t, "stale put", err, codes.Aborted)
	_, err = in.src.DeleteSource(ctx, &samsav1.DeleteSourceRequest{Name: src})
	wantCode(t, "delete used source", err, codes.FailedPrecondition)
	_, err = in.flows.DeleteFlow(ctx, &samsav1.DeleteFlowRequest{Name: fl, Version: resumed.Version})
	wantCode(t, "delete flow", err, codes.OK)
	_, err = in.flows.GetFlow(ctx, &samsav1.GetFlowRequest{Name: fl})
	wantCode(t, "get deleted flow", err, codes.NotFound)
	_, err = in.src.DeleteSource(ctx, &samsav1.DeleteSourceRequest{Name: src})
	wantCode(t, "delete source", err, codes.OK)
	_, err = in.src.GetSource(ctx, &samsav1.GetSourceRequest{Name: src})
	wantCode(t, "get deleted source", err, codes.NotFound)
	_, err = in.flows.PauseFlow(ctx, &samsav1.PauseFlowRequest{Name: fl})
	wantCode(t, "pause deleted flow", err, codes.NotFound)
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

func TestCRUDOverREST(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)
	src := uniqueName("orders")
	fl := uniqueName("to-crm")

	code, m := in.restJSON(t, "PUT", "/v1/sources/"+src, editorTok, `{"description": "shop", "retention": "24h"}`)
	if code != 200 || m["result"] != "created" {
		t.Fatalf("put source: %d %v", code, m)
	}
	code, m = in.restJSON(t, "GET", "/v1/sources/"+src, viewerTok, "")
	if code != 200 || m["name"] != src || m["retention"] != "24h" || m["topic"] != "samsa.src."+src {
		t.Fatalf("get source: %d %v", code, m)
	}
	code, m = in.restJSON(t, "GET", "/v1/sources", viewerTok, "")
	if code != 200 || len(m["sources"].([]any)) != 1 {
		t.Fatalf("list sources: %d %v", code, m)
	}

	flowJSON := fmt.Sprintf(`{
		"source": %q,
		"filter": "event.type == \"order.created\"",
		"transform": "def transform(event):\n    return {\"total\": event.data[\"amount\"]}\n",
		"destination": {"http": {"url": "https://crm.example.com/hooks"}},
		"delivery": {"retry": {"initialBackoff": "1s", "maxBackoff": "30s"}, "maxInFlight": 8,
		             "maintenanceWindows": [{"cron": "0 2 * * SUN", "duration": "2h", "timeZone": "Europe/Berlin"}]}
	}`, src)
	code, m = in.restJSON(t, "PUT", "/v1/flows/"+fl, editorTok, flowJSON)
	if code != 200 || m["result"] != "created" {
		t.Fatalf("put flow: %d %v", code, m)
	}
	version := m["flow"].(map[string]any)["version"].(string) // int64 is a string in JSON
	code, m = in.restJSON(t, "PUT", "/v1/flows/"+fl, editorTok, flowJSON)
	if code != 200 || m["result"] != "unchanged" {
		t.Fatalf("put flow again: %d %v", code, m)
	}
	code, m = in.restJSON(t, "GET", "/v1/flows?source="+src, viewerTok, "")
	if code != 200 || len(m["flows"].([]any)) != 1 {
		t.Fatalf("list flows: %d %v", code, m)
	}
	code, m = in.restJSON(t, "GET", "/v1/flows/"+fl+"/status", viewerTok, "")
	if code != 200 || m["state"] != "active" || m["nextMaintenance"] == nil {
		t.Fatalf("status: %d %v", code, m)
	}
	code, m = in.restJSON(t, "POST", "/v1/flows/"+fl+":pause", editorTok, "{}")
	if code != 200 || m["paused"] != true {
		t.Fatalf("pause: %d %v", code, m)
	}
	code, m = in.restJSON(t, "POST", "/v1/flows/"+fl+":resume", editorTok, "")
	if code != 200 || m["paused"] != nil {
		t.Fatalf("resume: %d %v", code, m)
	}

	// A write with the old version: 409 with the error body.
	code, m = in.restJSON(t, "PUT", "/v1/flows/"+fl, editorTok, flowJSON[:len(flowJSON)-2]+`, "version": `+version+"}")
	if code != http.StatusConflict || m["code"] != "ABORTED" || m["error"] == "" || m["requestId"] == "" {
		t.Fatalf("stale put: %d %v", code, m)
	}
	code, m = in.restJSON(t, "DELETE", "/v1/sources/"+src, editorTok, "")
	if code != http.StatusBadRequest || m["code"] != "FAILED_PRECONDITION" {
		t.Fatalf("delete used source: %d %v", code, m)
	}
	code, m = in.restJSON(t, "DELETE", "/v1/flows/"+fl+"?version="+version, editorTok, "")
	if code != http.StatusConflict {
		t.Fatalf("delete with stale version: %d %v", code, m)
	}
	if code, m = in.restJSON(t, "DELETE", "/v1/flows/"+fl, editorTok, ""); code != 200 {
		t.Fatalf("delete flow: %d %v", code, m)
	}
	if code, m = in.restJSON(t, "GET", "/v1/flows/"+fl, viewerTok, ""); code != http.StatusNotFound || m["code"] != "NOT_FOUND" {
		t.Fatalf("get deleted flow: %d %v", code, m)
	}
	if code, m = in.restJSON(t, "DELETE", "/v1/sources/"+src, editorTok, ""); code != 200 {
		t.Fatalf("delete source: %d %v", code, m)
	}
	if code, m = in.restJSON(t, "DELETE", "/v1/sources/"+src, editorTok, ""); code != http.StatusNotFound {
		t.Fatalf("delete deleted source: %d %v", code, m)
	}
}

func TestValidationErrorsOverAPI(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)
	src := uniqueName("orders")
	if code, m := in.restJSON(t, "PUT", "/v1/sources/"+src, editorTok, `{}`); code != 200 {
		t.Fatalf("put source: %d %v", code, m)
	}
	cases := []struct {
		name, path, body string
		want, field      string
	}{
		{"transform", "/v1/flows/f1", `{"source": "` + src + `", "transform": "def transform(event):\n    x = 1\n    return {\"a\": amout}\n", "destination": {"http": {"url": "https://x.example.com"}}}`,
			"flow.transform: line 3, column 18: undefined: amout", "flow.transform"},
		{"url", "/v1/flows/f1", `{"source": "` + src + `", "destination": {"http": {"url": "ftp://x.example.com"}}}`,
			`flow.destination.http.url: scheme "ftp": want http or https`, "flow.destination.http.url"},
		{"unknown source", "/v1/flows/f1", `{"source": "nosuch", "destination": {"http": {"url": "https://x.example.com"}}}`,
			`flow.source: unknown source "nosuch"`, "flow.source"},
		{"cron", "/v1/flows/f1", `{"source": "` + src + `", "destination": {"http": {"url": "https://x.example.com"}}, "delivery": {"maintenanceWindows": [{"cron": "every sunday", "duration": "1h"}]}}`,
			`flow.delivery.maintenanceWindows[0].cron: "every sunday": expected exactly 5 fields, found 2: [every sunday]`, "flow.delivery.maintenanceWindows[0].cron"},
		{"source name", "/v1/sources/Bad_Name", `{}`,
			`source.name: name "Bad_Name" must match ^[a-z][a-z0-9-]{0,62}$ (lowercase letters, digits and '-', starting with a letter, at most 63 characters)`, "source.name"},
		{"unknown field", "/v1/flows/f1", `{"source": "` + src + `", "tranform": "x"}`, `unknown field "tranform"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, m := in.restJSON(t, "PUT", c.path, editorTok, c.body)
			if code != http.StatusBadRequest || m["code"] != "INVALID_ARGUMENT" {
				t.Fatalf("%d %v", code, m)
			}
			msg, _ := m["error"].(string)
			if c.field == "" {
				if !strings.Contains(msg, c.want) {
					t.Fatalf("error %q, want it to contain %q", msg, c.want)
				}
				return
			}
			if msg != c.want {
				t.Fatalf("error %q\nwant %q", msg, c.want)
			}
			fields, _ := m["fields"].([]any)
			if len(fields) != 1 || fields[0].(map[string]any)["field"] != c.field {
				t.Fatalf("fields %v", m["fields"])
			}
		})
	}
	// gRPC: InvalidArgument with a BadRequest detail.
	_, err := in.flows.PutFlow(as(editorTok), &samsav1.PutFlowRequest{Flow: &samsav1.Flow{Name: "f1", Source: src}})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "flow.destination: required: one of http, kafka, postgres" {
		t.Fatalf("gRPC: %v", err)
	}
	if len(st.Details()) != 1 || st.Details()[0].(*errdetails.BadRequest).FieldViolations[0].Field != "flow.destination" {
		t.Fatalf("gRPC details: %v", st.Details())
	}
}

func TestRestartServesStateFromTopic(t *testing.T) {
	e := newEnv(t)
	a := e.start(t)
	ctx := as(adminTok)
	src := uniqueName("orders")
	if _, err := a.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src, Auth: &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "github", Secret: "gh-secret"}}}}); err != nil {
		t.Fatal(err)
	}
	var flows []*samsav1.Flow
	for i := range 3 {
		f := httpFlow(fmt.Sprintf("flow-%d", i), src)
		f.Destination.GetHttp().SigningSecret = "signing-" + strconv.Itoa(i)
		pf, err := a.flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: f})
		if err != nil {
			t.Fatal(err)
		}
		flows = append(flows, pf.Flow)
	}
	if _, err := a.flows.DeleteFlow(ctx, &samsav1.DeleteFlowRequest{Name: "flow-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.flows.PauseFlow(ctx, &samsav1.PauseFlowRequest{Name: "flow-2"}); err != nil {
		t.Fatal(err)
	}
	before, err := a.flows.ListFlows(ctx, &samsav1.ListFlowsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	srcBefore, err := a.src.GetSource(ctx, &samsav1.GetSourceRequest{Name: src})
	if err != nil {
		t.Fatal(err)
	}
	a.stop()

	b := e.start(t)
	after, err := b.flows.ListFlows(ctx, &samsav1.ListFlowsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(before, after) || len(after.Flows) != 2 || !after.Flows[1].Paused {
		t.Fatalf("after restart:\n%v\nbefore:\n%v", after, before)
	}
	srcAfter, err := b.src.GetSource(ctx, &samsav1.GetSourceRequest{Name: src})
	if err != nil || !proto.Equal(srcBefore, srcAfter) {
		t.Fatalf("source after restart: %v %v", srcAfter, err)
	}
	// The restarted service still opens the secrets it sealed: putting the
	// same flow is "unchanged".
	f := httpFlow("flow-0", src)
	f.Destination.GetHttp().SigningSecret = "signing-0"
	pf, err := b.flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: f})
	if err != nil || pf.Result != "unchanged" || pf.Flow.Version != flows[0].Version {
		t.Fatalf("put after restart: %v %v", pf, err)
	}
}

func TestTwoInstances(t *testing.T) {
	e := newEnv(t)
	a, b := e.start(t), e.start(t)
	ctx := as(editorTok)
	src := uniqueName("orders")

	// A write to one is visible on the other within a second.
	var worst time.Duration
	for i := range 5 {
		start := time.Now()
		ps, err := a.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src, Description: strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		put := time.Since(start)
		seen := eventually(t, time.Second, "write on a visible on b", func() bool {
			got, err := b.src.GetSource(ctx, &samsav1.GetSourceRequest{Name: src})
			return err == nil && got.Version == ps.Source.Version
		})
		worst = max(worst, seen)
		t.Logf("put %d on a: %s; visible on b %s later", i, put, seen)
	}

	t.Logf("slowest replication to the other instance: %s", worst)

	// Concurrent writes with the same version: exactly one wins, the other
	// gets Aborted (gRPC) ...
	cur, err := b.src.GetSource(ctx, &samsav1.GetSourceRequest{Name: src})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, in := range []*instance{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src, Description: fmt.Sprintf("round %d by %d", round, i), Version: cur.Version}})
			}()
		}
		wg.Wait()
		won, aborted := 0, 0
		for _, err := range errs {
			switch status.Code(err) {
			case codes.OK:
				won++
			case codes.Aborted:
				aborted++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 || aborted != 1 {
			t.Fatalf("round %d: %d won, %d aborted: %v", round, won, aborted, errs)
		}
		if cur, err = a.src.GetSource(ctx, &samsav1.GetSourceRequest{Name: src}); err != nil {
			t.Fatal(err)
		}
	}

	// ... and 409 over REST.
	codes409 := make([]int, 2)
	var wg sync.WaitGroup
	for i, in := range []*instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]any{"description": fmt.Sprint("rest by ", i), "version": cur.Version})
			codes409[i], _ = in.rest(t, "PUT", "/v1/sources/"+src, editorTok, string(body))
		}()
	}
	wg.Wait()
	if !(codes409[0] == 200 && codes409[1] == 409 || codes409[0] == 409 && codes409[1] == 200) {
		t.Fatalf("concurrent REST writes: %v, want one 200 and one 409", codes409)
	}
}

func BenchmarkPutSource(b *testing.B) {
	e := newEnv(b)
	in := e.start(b)
	ctx := as(editorTok)
	src := uniqueName("bench")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src, Description: strconv.Itoa(i)}}); err != nil {
			b.Fatal(err)
		}
	}
}
