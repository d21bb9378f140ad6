package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Health collects readiness checks. A service is live while its process
// serves HTTP, and ready when every check passes.
type Health struct {
	mu     sync.RWMutex
	checks map[string]func() error
}

// NewHealth returns a Health without checks (always ready).
func NewHealth() *Health { return &Health{checks: map[string]func() error{}} }

// Add registers a readiness check under name; it must be cheap.
func (h *Health) Add(name string, check func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
}

// Ready runs every check and returns the failures by name.
func (h *Health) Ready() map[string]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	failed := map[string]string{}
	for name, c := range h.checks {
		if err := c(); err != nil {
			failed[name] = err.Error()
		}
	}
	return failed
}

// ChanCheck is a readiness check that passes once ch is closed.
func ChanCheck(ch <-chan struct{}, notYet string) func() error {
	return func() error {
		select {
		case <-ch:
			return nil
		default:
			return errors.New(notYet)
		}
	}
}

// Mount adds /metrics, /healthz and /readyz to mux.
func Mount(mux *http.ServeMux, reg prometheus.Gatherer, h *Health) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		failed := h.Ready()
		if len(failed) == 0 {
			writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
			return
		}
		names := make([]string, 0, len(failed))
		for n := range failed {
			names = append(names, n)
		}
		sort.Strings(names)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": failed, "checks": names})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve runs srv on ln until ctx is done, then shuts it down gracefully,
// giving in-flight requests up to drain to finish.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, drain time.Duration, log *zap.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http server did not drain in time", zap.String("addr", ln.Addr().String()), zap.Error(err))
		return srv.Close()
	}
	return nil
}

// AdminOpt configures AdminServer.
type AdminOpt func(*http.ServeMux)

// WithProfiling also serves Go's profiles under /debug/pprof/. Off by
// default: the admin address is usually reachable inside the cluster (for
// probes and scraping) and profiles are not authenticated.
func WithProfiling() AdminOpt {
	return func(mux *http.ServeMux) {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
}

// AdminServer serves only /metrics, /healthz and /readyz (and what opts
// add), for services without an HTTP API of their own (transformer,
// deliverer).
func AdminServer(reg prometheus.Gatherer, h *Health, opts ...AdminOpt) *http.Server {
	mux := http.NewServeMux()
	Mount(mux, reg, h)
	for _, o := range opts {
		o(mux)
	}
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}
