package server

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/samsa-dev/samsa/pkg/auth"
	"github.com/samsa-dev/samsa/pkg/flow"
)

// chain runs unary interceptors around h the way grpc.ChainUnaryInterceptor does.
func chain(ics []grpc.UnaryServerInterceptor, h grpc.UnaryHandler) grpc.UnaryHandler {
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], h
		h = func(ctx context.Context, req any) (any, error) {
			return ic(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/samsa.v1.FlowService/PutFlow"}, next)
		}
	}
	return h
}

func TestInterceptorsRecoverAndMapErrors(t *testing.T) {
	ic := &interceptors{log: zaptest.NewLogger(t), m: newMetrics(prometheus.NewRegistry()), auth: auth.NewAuthenticator(nil)}
	cases := []struct {
		handler func() error
		want    codes.Code
	}{
		{func() error { panic("boom") }, codes.Internal},
		{func() error { return flow.ErrNotFound }, codes.NotFound},
		{func() error { return &flow.ValidationError{Fields: []flow.FieldError{{Field: "flow.x", Msg: "bad"}}} }, codes.InvalidArgument},
		{func() error { return flow.ErrConflict }, codes.Aborted},
		{func() error { return flow.ErrFailedPrecondition }, codes.FailedPrecondition},
		{func() error { return flow.ErrUnavailable }, codes.Unavailable},
		{func() error { return flow.ErrNotReady }, codes.Unavailable},
		{func() error { return context.Canceled }, codes.Canceled},
		{func() error { return status.Error(codes.PermissionDenied, "x") }, codes.PermissionDenied},
		{func() error { return nil }, codes.OK},
	}
	for _, c := range cases {
		h := chain(ic.unary(), func(context.Context, any) (any, error) { return nil, c.handler() })
		if _, err := h(context.Background(), nil); status.Code(err) != c.want {
			t.Errorf("%v, want %v", err, c.want)
		}
	}
}
