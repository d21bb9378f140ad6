package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/samsa-dev/samsa/pkg/auth"
)

const (
	requestIDHeader = "X-Request-Id"
	requestIDKey    = "x-request-id" // gRPC metadata
)

type callCtx struct{}

// call is what the outer interceptors learn about a call from the inner
// ones (the caller's role is only known after authentication).
type call struct {
	requestID string
	principal *auth.Principal
}

func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callCtx{}).(*call)
	if c == nil {
		return &call{}
	}
	return c
}

// RequestID returns the id of the request being served.
func RequestID(ctx context.Context) string { return callOf(ctx).requestID }

// noteCaller records the authenticated caller for the log line.
func noteCaller(ctx context.Context) {
	if p, ok := auth.FromContext(ctx); ok {
		callOf(ctx).principal = &p
	}
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts what a client (or the gateway) sends, if it is
// short and printable, so ids can be correlated across systems.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

// withRequestID takes the caller's x-request-id or makes one, puts it in
// the context and sends it back as response metadata.
func withRequestID(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	id := ""
	if v := md.Get(requestIDKey); len(v) > 0 && validRequestID(v[0]) {
		id = v[0]
	} else {
		id = newRequestID()
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDKey, id))
	return context.WithValue(ctx, callCtx{}, &call{requestID: id})
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	writes   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_control_requests_total",
			Help: "Control API calls by method and gRPC code (REST calls included).",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samsa_control_request_duration_seconds",
			Help:    "Duration of control API calls by method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_control_writes_total",
			Help: "Puts of sources and flows by kind and result (created, updated, unchanged).",
		}, []string{"kind", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.writes)
	}
	return m
}

// interceptors are the server's interceptors, outermost first: request id,
// logging and metrics, recovery, authentication, error mapping.
type interceptors struct {
	log  *zap.Logger
	m    *metrics
	auth *auth.Authenticator
}

func (ic *interceptors) unary() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx = withRequestID(ctx)
			start := time.Now()
			resp, err := h(ctx, req)
			ic.observe(ctx, info.FullMethod, start, err)
			return resp, err
		},
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
			defer ic.recover(ctx, info.FullMethod, &err)
			return h(ctx, req)
		},
		ic.auth.UnaryInterceptor(),
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			noteCaller(ctx)
			resp, err := h(ctx, req)
			return resp, grpcError(err)
		},
	}
}

func (ic *interceptors) stream() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx := withRequestID(ss.Context())
			start := time.Now()
			err := h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
			ic.observe(ctx, info.FullMethod, start, err)
			return err
		},
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
			defer ic.recover(ss.Context(), info.FullMethod, &err)
			return h(srv, ss)
		},
		ic.auth.StreamInterceptor(),
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			noteCaller(ss.Context())
			return grpcError(h(srv, ss))
		},
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// recover turns a panic of a handler into an Internal error, logged with
// its stack, so one bad request never takes the service down.
func (ic *interceptors) recover(ctx context.Context, method string, err *error) {
	if r := recover(); r != nil {
		ic.log.Error("panic in control API handler", zap.String("method", method), zap.String("request_id", RequestID(ctx)),
			zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		*err = status.Errorf(codes.Internal, "internal error (request id %s)", RequestID(ctx))
	}
}

// observe logs a call and counts it. Reads are logged at debug level (a
// dashboard polls them), writes and failures at info or above.
func (ic *interceptors) observe(ctx context.Context, fullMethod string, start time.Time, err error) {
	dur := time.Since(start)
	method := strings.TrimPrefix(fullMethod, "/samsa.v1.")
	c := status.Code(err)
	ic.m.requests.WithLabelValues(method, c.String()).Inc()
	ic.m.duration.WithLabelValues(method).Observe(dur.Seconds())

	lvl := zapcore.DebugLevel
	switch {
	case c == codes.Internal || c == codes.Unknown || c == codes.DataLoss:
		lvl = zapcore.ErrorLevel
	case c == codes.Unavailable || c == codes.Unauthenticated || c == codes.PermissionDenied:
		lvl = zapcore.WarnLevel
	case auth.RequiredRole(fullMethod) >= auth.RoleEditor || c != codes.OK:
		lvl = zapcore.InfoLevel
	}
	ce := ic.log.Check(lvl, "control api call")
	if ce == nil {
		return
	}
	fields := []zap.Field{
		zap.String("method", method),
		zap.String("code", c.String()),
		zap.Duration("duration", dur),
		zap.String("request_id", RequestID(ctx)),
	}
	if p := callOf(ctx).principal; p != nil {
		fields = append(fields, zap.String("role", p.Role.String()), zap.Bool("anonymous", p.Anonymous))
	}
	if err != nil {
		fields = append(fields, zap.String("error", status.Convert(err).Message()))
	}
	ce.Write(fields...)
}
