package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAdminServerProfiling(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []AdminOpt
		pprof int // status of /debug/pprof/
	}{
		{"default", nil, http.StatusNotFound},
		{"with profiling", []AdminOpt{WithProfiling()}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(AdminServer(prometheus.NewRegistry(), NewHealth(), tc.opts...).Handler)
			defer srv.Close()
			for path, want := range map[string]int{"/metrics": 200, "/healthz": 200, "/readyz": 200, "/debug/pprof/": tc.pprof, "/debug/pprof/heap": tc.pprof} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
				}
			}
		})
	}
}
