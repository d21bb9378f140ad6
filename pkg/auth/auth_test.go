package auth

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

const (
	adminTok  = "admin-token-0123456789"
	editorTok = "editor-token-0123456789"
	viewerTok = "viewer-token-0123456789"
)

func TestParseTokens(t *testing.T) {
	cases := []struct {
		in      []string
		wantErr string
	}{
		{in: []string{"admin:" + adminTok, " editor : " + editorTok, "", "VIEWER:" + viewerTok}},
		{in: []string{adminTok}, wantErr: "want role:token"},
		{in: []string{"root:" + adminTok}, wantErr: `role "root"`},
		{in: []string{"admin:short"}, wantErr: "shorter than 16"},
		{in: []string{"admin:" + adminTok, "viewer:" + adminTok}, wantErr: "given twice"},
	}
	for _, tc := range cases {
		_, err := ParseTokens(tc.in)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ParseTokens(%q) = %v, want error containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestTokensRole(t *testing.T) {
	toks, err := ParseTokens([]string{"admin:" + adminTok, "editor:" + editorTok, "viewer:" + viewerTok})
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]Role{adminTok: RoleAdmin, editorTok: RoleEditor, viewerTok: RoleViewer, "": RoleNone, "nope-nope-nope-nope": RoleNone, adminTok + "x": RoleNone} {
		if got := toks.Role(tok); got != want {
			t.Errorf("Role(%q) = %s, want %s", tok, got, want)
		}
	}
}

func TestTokensFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte("# ops\nadmin:"+adminTok+"\n\n  viewer:"+viewerTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{Tokens: []string{"editor:" + editorTok}, TokensFile: p}
	toks, err := c.LoadTokens()
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 3 || toks.Role(viewerTok) != RoleViewer || toks.Role(editorTok) != RoleEditor {
		t.Fatalf("tokens from flag and file: %d", toks.Len())
	}
}

func TestRequiredRole(t *testing.T) {
	want := map[string]Role{
		"GetSource": RoleViewer, "ListSources": RoleViewer, "PutSource": RoleEditor, "DeleteSource": RoleEditor,
		"GetFlow": RoleViewer, "ListFlows": RoleViewer, "PutFlow": RoleEditor, "DeleteFlow": RoleEditor,
		"PauseFlow": RoleEditor, "ResumeFlow": RoleEditor, "GetFlowStatus": RoleViewer, "RedriveDLQ": RoleEditor,
		"Test": RoleViewer, "ListFlowStatuses": RoleViewer, "ListSourceStatuses": RoleViewer, "GetCaller": RoleViewer,
	}
	// Every method of the control services is classified on purpose.
	for _, sd := range []grpc.ServiceDesc{samsav1.SourceService_ServiceDesc, samsav1.FlowService_ServiceDesc, samsav1.TransformService_ServiceDesc, samsav1.AuthService_ServiceDesc} {
		var names []string
		for _, m := range sd.Methods {
			names = append(names, m.MethodName)
		}
		for _, s := range sd.Streams {
			names = append(names, s.StreamName)
		}
		for _, n := range names {
			w, ok := want[n]
			if !ok {
				t.Errorf("method %s.%s has no expected role in this test", sd.ServiceName, n)
				continue
			}
			if got := RequiredRole("/" + sd.ServiceName + "/" + n); got != w {
				t.Errorf("%s: %s, want %s", n, got, w)
			}
		}
	}
	for m, w := range map[string]Role{"/x.Y/Getaway": RoleAdmin, "/x.Y/Rotate": RoleAdmin, "/x.Y/Status": RoleViewer} {
		if got := RequiredRole(m); got != w {
			t.Errorf("%s: %s, want %s", m, got, w)
		}
	}
}

type fakeTransform struct {
	samsav1.UnimplementedTransformServiceServer
	samsav1.UnimplementedFlowServiceServer
}

func (fakeTransform) Test(ctx context.Context, _ *samsav1.TestRequest) (*samsav1.TestResponse, error) {
	p, _ := FromContext(ctx)
	return &samsav1.TestResponse{Results: []*samsav1.TestResult{{Error: p.Role.String()}}}, nil
}

func (fakeTransform) PauseFlow(ctx context.Context, _ *samsav1.PauseFlowRequest) (*samsav1.Flow, error) {
	return &samsav1.Flow{Name: "x"}, nil
}

func (fakeTransform) RedriveDLQ(_ *samsav1.RedriveDLQRequest, ss grpc.ServerStreamingServer[samsav1.RedriveDLQProgress]) error {
	return ss.Send(&samsav1.RedriveDLQProgress{Done: true})
}

func dial(t *testing.T, a *Authenticator) *grpc.ClientConn {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.UnaryInterceptor(a.UnaryInterceptor()), grpc.StreamInterceptor(a.StreamInterceptor()))
	samsav1.RegisterTransformServiceServer(srv, fakeTransform{})
	samsav1.RegisterFlowServiceServer(srv, fakeTransform{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("passthrough:///buf", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestInterceptors(t *testing.T) {
	toks, err := ParseTokens([]string{"admin:" + adminTok, "editor:" + editorTok, "viewer:" + viewerTok})
	if err != nil {
		t.Fatal(err)
	}
	cc := dial(t, NewAuthenticator(toks))
	tc, fc := samsav1.NewTransformServiceClient(cc), samsav1.NewFlowServiceClient(cc)
	with := func(auth string) context.Context {
		if auth == "" {
			return context.Background()
		}
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", auth)
	}
	cases := []struct {
		auth        string
		test, pause codes.Code
		stream      codes.Code
	}{
		{"", codes.Unauthenticated, codes.Unauthenticated, codes.Unauthenticated},
		{"Bearer wrong-token-wrong-token", codes.Unauthenticated, codes.Unauthenticated, codes.Unauthenticated},
		{"Basic " + adminTok, codes.Unauthenticated, codes.Unauthenticated, codes.Unauthenticated},
		{"Bearer " + viewerTok, codes.OK, codes.PermissionDenied, codes.PermissionDenied},
		{"bearer " + editorTok, codes.OK, codes.OK, codes.OK},
		{"Bearer " + adminTok, codes.OK, codes.OK, codes.OK},
	}
	for _, c := range cases {
		_, err := tc.Test(with(c.auth), &samsav1.TestRequest{})
		if got := status.Code(err); got != c.test {
			t.Errorf("%q Test: %v, want %v", c.auth, err, c.test)
		}
		_, err = fc.PauseFlow(with(c.auth), &samsav1.PauseFlowRequest{Name: "x"})
		if got := status.Code(err); got != c.pause {
			t.Errorf("%q PauseFlow: %v, want %v", c.auth, err, c.pause)
		}
		st, err := fc.RedriveDLQ(with(c.auth), &samsav1.RedriveDLQRequest{Name: "x"})
		if err == nil {
			_, err = st.Recv()
		}
		if got := status.Code(err); got != c.stream {
			t.Errorf("%q RedriveDLQ: %v, want %v", c.auth, err, c.stream)
		}
	}
	_, err = fc.PauseFlow(with("Bearer "+viewerTok), &samsav1.PauseFlowRequest{Name: "x"})
	if want := "role viewer may not call samsa.v1.FlowService/PauseFlow (needs editor)"; status.Convert(err).Message() != want {
		t.Errorf("message %q, want %q", status.Convert(err).Message(), want)
	}
	res, err := tc.Test(with("Bearer "+editorTok), &samsav1.TestRequest{})
	if err != nil || res.Results[0].Error != "editor" {
		t.Errorf("principal in context: %v %v", res, err)
	}
}

func TestInterceptorsWithoutTokens(t *testing.T) {
	cc := dial(t, NewAuthenticator(nil))
	res, err := samsav1.NewTransformServiceClient(cc).Test(context.Background(), &samsav1.TestRequest{})
	if err != nil || res.Results[0].Error != "admin" {
		t.Fatalf("insecure mode: %v %v", res, err)
	}
}

func BenchmarkTokensRole(b *testing.B) {
	toks, _ := ParseTokens([]string{"admin:" + adminTok, "editor:" + editorTok, "viewer:" + viewerTok})
	b.ReportAllocs()
	for b.Loop() {
		toks.Role(viewerTok)
	}
}
