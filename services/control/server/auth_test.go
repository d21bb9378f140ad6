package server

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/samsa-dev/samsa/pkg/auth"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

var roleTokens = map[auth.Role]string{auth.RoleViewer: viewerTok, auth.RoleEditor: editorTok, auth.RoleAdmin: adminTok}

// TestAuthEveryEndpoint calls every REST endpoint and every gRPC method
// without a token, with a wrong token, and with each role.
func TestAuthEveryEndpoint(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)
	src, fl := uniqueName("orders"), uniqueName("flow")
	if _, err := in.src.PutSource(as(adminTok), &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src}}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.flows.PutFlow(as(adminTok), &samsav1.PutFlowRequest{Flow: httpFlow(fl, src)}); err != nil {
		t.Fatal(err)
	}
	flowBody := fmt.Sprintf(`{"source": %q, "destination": {"http": {"url": "https://x.example.com"}}}`, src)

	rest := []struct {
		method, path, body string
		need               auth.Role
	}{
		{"GET", "/v1/sources", "", auth.RoleViewer},
		{"GET", "/v1/sources/" + src, "", auth.RoleViewer},
		{"PUT", "/v1/sources/" + src, `{}`, auth.RoleEditor},
		{"DELETE", "/v1/sources/nosuch", "", auth.RoleEditor},
		{"GET", "/v1/flows", "", auth.RoleViewer},
		{"GET", "/v1/flows/" + fl, "", auth.RoleViewer},
		{"PUT", "/v1/flows/" + fl, flowBody, auth.RoleEditor},
		{"DELETE", "/v1/flows/nosuch", "", auth.RoleEditor},
		{"POST", "/v1/flows/" + fl + ":pause", `{}`, auth.RoleEditor},
		{"POST", "/v1/flows/" + fl + ":resume", `{}`, auth.RoleEditor},
		{"GET", "/v1/flows/" + fl + "/status", "", auth.RoleViewer},
		{"POST", "/v1/flows/" + fl + "/dlq:redrive", `{}`, auth.RoleEditor},
		{"POST", "/v1/transforms:test", `{"filter": "True", "events": [{}]}`, auth.RoleViewer},
	}
	for _, ep := range rest {
		name := ep.method + " " + ep.path
		for _, tok := range []string{"", "wrong-token-wrong-token"} {
			code, m := in.restJSON(t, ep.method, ep.path, tok, ep.body)
			if code != http.StatusUnauthorized || errCode(m) != "UNAUTHENTICATED" {
				t.Errorf("%s with token %q: %d %v, want 401", name, tok, code, m)
			}
		}
		for role, tok := range roleTokens {
			if role < ep.need {
				if code, m := in.restJSON(t, ep.method, ep.path, tok, ep.body); code != http.StatusForbidden || errCode(m) != "PERMISSION_DENIED" {
					t.Errorf("%s as %s: %d %v, want 403", name, role, code, m)
				}
				continue
			}
			// The redrive answers a stream of JSON lines, so the body is not parsed here.
			if code, b := in.rest(t, ep.method, ep.path, tok, ep.body); code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("%s as %s: %d %s, want it allowed", name, role, code, b)
			}
		}
	}

	grpcCalls := []struct {
		name string
		need auth.Role
		call func(ctx context.Context) error
	}{
		{"GetSource", auth.RoleViewer, func(ctx context.Context) error {
			_, err := in.src.GetSource(ctx, &samsav1.GetSourceRequest{Name: src})
			return err
		}},
		{"ListSources", auth.RoleViewer, func(ctx context.Context) error {
			_, err := in.src.ListSources(ctx, &samsav1.ListSourcesRequest{})
			return err
		}},
		{"PutSource", auth.RoleEditor, func(ctx context.Context) error {
			_, err := in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src}})
			return err
		}},
		{"DeleteSource", auth.RoleEditor, func(ctx context.Context) error {
			_, err := in.src.DeleteSource(ctx, &samsav1.DeleteSourceRequest{Name: "nosuch"})
			return err
		}},
		{"GetFlow", auth.RoleViewer, func(ctx context.Context) error {
			_, err := in.flows.GetFlow(ctx, &samsav1.GetFlowRequest{Name: fl})
			return err
		}},
		{"ListFlows", auth.RoleViewer, func(ctx context.Context) error {
			_, err := in.flows.ListFlows(ctx, &samsav1.ListFlowsRequest{})
			return err
		}},
		{"PutFlow", auth.RoleEditor, func(ctx context.Context) error {
			_, err := in.flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: httpFlow(fl, src)})
			return err
		}},
		{"DeleteFlow", auth.RoleEditor, func(ctx context.Context) error {
			_, err := in.flows.DeleteFlow(ctx, &samsav1.DeleteFlowRequest{Name: "nosuch"})
			return err
		}},
		{"PauseFlow", auth.RoleEditor, func(ctx context.Context) error {
			_, err := in.flows.PauseFlow(ctx, &samsav1.PauseFlowRequest{Name: fl})
			return err
		}},
		{"ResumeFlow", auth.RoleEditor, func(ctx context.Context) error {
			_, err := in.flows.ResumeFlow(ctx, &samsav1.ResumeFlowRequest{Name: fl})
			return err
		}},
		{"GetFlowStatus", auth.RoleViewer, func(ctx context.Context) error {
			_, err := in.flows.GetFlowStatus(ctx, &samsav1.GetFlowStatusRequest{Name: fl})
			return err
		}},
		{"RedriveDLQ", auth.RoleEditor, func(ctx context.Context) error {
			st, err := in.flows.RedriveDLQ(ctx, &samsav1.RedriveDLQRequest{Name: fl})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}},
		{"Test", auth.RoleViewer, func(ctx context.Context) error {
			_, err := in.trans.Test(ctx, &samsav1.TestRequest{Filter: "True"})
			return err
		}},
		{"ListFlowStatuses", auth.RoleViewer, func(ctx context.Context) error {
			_, err := in.flows.ListFlowStatuses(ctx, &samsav1.ListFlowStatusesRequest{HistoryPoints: 10})
			return err
		}},
		{"ListSourceStatuses", auth.RoleViewer, func(ctx context.Context) error {
			_, err := in.src.ListSourceStatuses(ctx, &samsav1.ListSourceStatusesRequest{})
			return err
		}},
		{"GetCaller", auth.RoleViewer, func(ctx context.Context) error {
			_, err := samsav1.NewAuthServiceClient(in.cc).GetCaller(ctx, &samsav1.GetCallerRequest{})
			return err
		}},
	}
	covered := map[string]bool{}
	for _, c := range grpcCalls {
		covered[c.name] = true
		for _, tok := range []string{"", "wrong-token-wrong-token"} {
			if err := c.call(as(tok)); status.Code(err) != codes.Unauthenticated {
				t.Errorf("%s with token %q: %v, want Unauthenticated", c.name, tok, err)
			}
		}
		for role, tok := range roleTokens {
			err := c.call(as(tok))
			switch code := status.Code(err); {
			case role < c.need && code != codes.PermissionDenied:
				t.Errorf("%s as %s: %v, want PermissionDenied", c.name, role, err)
			case role >= c.need && (code == codes.PermissionDenied || code == codes.Unauthenticated):
				t.Errorf("%s as %s: %v, want it allowed", c.name, role, err)
			}
		}
	}
	// Every method of the API is in the table.
	for _, sd := range [][]string{
		methodNames(samsav1.SourceService_ServiceDesc.Methods, nil),
		methodNames(samsav1.FlowService_ServiceDesc.Methods, samsav1.FlowService_ServiceDesc.Streams),
		methodNames(samsav1.TransformService_ServiceDesc.Methods, nil),
		methodNames(samsav1.AuthService_ServiceDesc.Methods, nil),
	} {
		for _, m := range sd {
			if !covered[m] {
				t.Errorf("method %s is not covered by the auth test", m)
			}
		}
	}
}

func TestInsecureAndHealthWithoutToken(t *testing.T) {
	e := newEnv(t)
	// Without tokens and without --insecure the service refuses to start.
	cfg := e.config()
	cfg.Auth.Tokens = nil
	if _, err := New(cfg, nil, nil, e.kcfg); err == nil {
		t.Fatal("started without tokens")
	}
	cfg = e.config()
	cfg.SecretKeys = nil
	if _, err := New(cfg, nil, nil, e.kcfg); err == nil {
		t.Fatal("started without secret keys")
	}
	// --insecure: every caller is an admin.
	in := e.start(t, func(c *Config) { c.Insecure, c.Auth.Tokens, c.SecretKeys = true, nil, nil })
	if code, m := in.restJSON(t, "PUT", "/v1/sources/"+uniqueName("s"), "", `{}`); code != 200 {
		t.Fatalf("insecure put: %d %v", code, m)
	}
}

func methodNames(ms []grpc.MethodDesc, ss []grpc.StreamDesc) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.MethodName)
	}
	for _, s := range ss {
		out = append(out, s.StreamName)
	}
	return out
}

// errCode is the code of a REST error body. The streaming endpoint (dlq
// redrive) reports errors the gateway's way, {"error": {"code": 16, ...}},
// with the same HTTP status.
func errCode(m map[string]any) string {
	if c, ok := m["code"].(string); ok {
		return c
	}
	if e, ok := m["error"].(map[string]any); ok {
		if c, ok := e["code"].(float64); ok {
			return code.Code(int32(c)).String()
		}
	}
	return ""
}
