package ingest

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/ingestauth"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func (r *Receiver) newGRPCServer() *grpc.Server {
	s := grpc.NewServer(
		grpc.MaxRecvMsgSize(int(r.cfg.MaxBodyBytes)+64<<10),
		grpc.ChainUnaryInterceptor(r.recoverUnary),
		grpc.ChainStreamInterceptor(r.recoverStream),
	)
	r.RegisterGRPC(s)
	return s
}

// serveGRPC serves until ctx is done, then stops gracefully: in-flight
// calls finish (their events acknowledged) within the drain timeout.
func (r *Receiver) serveGRPC(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- r.grpcSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { r.grpcSrv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(r.cfg.DrainTimeout):
		r.log.Warn("grpc server did not drain in time")
		r.grpcSrv.Stop()
		<-stopped
	}
	<-errc
	return nil
}

func (r *Receiver) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic in grpc handler", zap.String("method", info.FullMethod), zap.Any("panic", p), zap.Stack("stack"))
			err = grpcstatus.Error(codes.Internal, "internal error")
		}
	}()
	return h(ctx, req)
}

func (r *Receiver) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic in grpc handler", zap.String("method", info.FullMethod), zap.Any("panic", p), zap.Stack("stack"))
			err = grpcstatus.Error(codes.Internal, "internal error")
		}
	}()
	return h(srv, ss)
}

// ingestServer is samsa.v1.IngestService over Receiver.ingest.
type ingestServer struct {
	samsav1.UnimplementedIngestServiceServer
	r *Receiver
}

func (s *ingestServer) Publish(ctx context.Context, req *samsav1.PublishRequest) (*samsav1.PublishResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	reqID := requestID(first(md, "x-request-id"))
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", reqID))
	ids, err := s.r.ingest(s.r.grpcRequest(md, reqID, req.GetSource(), req.GetEvents()))
	if err != nil {
		return nil, grpcError(err)
	}
	return &samsav1.PublishResponse{Ids: ids}, nil
}

// PublishStream handles the stream's requests one after the other and
// acknowledges each in order. A failed request ends the stream with its
// error: the requests acknowledged before it are in Kafka, the client
// resends from the failed one.
func (s *ingestServer) PublishStream(stream grpc.BidiStreamingServer[samsav1.PublishStreamRequest, samsav1.PublishStreamResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	reqID := requestID(first(md, "x-request-id"))
	_ = stream.SendHeader(metadata.Pairs("x-request-id", reqID))
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ids, err := s.r.ingest(s.r.grpcRequest(md, reqID, req.GetSource(), req.GetEvents()))
		if err != nil {
			return grpcError(err)
		}
		if err := stream.Send(&samsav1.PublishStreamResponse{Ids: ids}); err != nil {
			return err
		}
	}
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// grpcRequest is the gRPC side of an ingest request: an API key in the
// authorization metadata (signatures cover HTTP bodies, which gRPC has
// not), events from the message.
func (r *Receiver) grpcRequest(md metadata.MD, reqID, source string, evs []*samsav1.IngestEvent) *request {
	in := &request{source: source, transport: "grpc", requestID: reqID}
	for _, e := range evs {
		in.bytes += len(e.GetData())
	}
	authz := first(md, "authorization")
	in.authenticate = func(v *ingestauth.Verifier) error {
		_, err := v.CheckAPIKey(authz)
		return err
	}
	in.decode = func(st *sourceState, now time.Time, dst []event.Event) ([]event.Event, error) {
		if len(evs) == 0 {
			return nil, errorf(ErrMalformed, "no events: send at least one")
		}
		if len(evs) > r.cfg.MaxEvents {
			return nil, errorf(ErrTooManyEvents, "%d events in one request, more than %d: split the batch", len(evs), r.cfg.MaxEvents)
		}
		for i, ie := range evs {
			ct := ie.GetContentType()
			if ct == "" {
				ct = ContentTypeJSON
			}
			if isJSONType(ct) {
				if err := validate(ie.GetData(), r.cfg.MaxDepth); err != nil {
					se := err.(*syntaxError)
					line, col := position(ie.GetData(), se.off)
					return nil, errorf(ErrMalformed, "event %d: data: line %d, column %d: invalid JSON: %s", i+1, line, col, se.msg)
				}
			}
			dst = append(dst, event.Event{
				ID: ie.GetId(), Type: ie.GetType(), Subject: ie.GetSubject(), Key: ie.GetKey(),
				Time: now, ContentType: ct, Data: ie.GetData(), Attributes: ie.GetAttributes(),
			})
		}
		return dst, nil
	}
	return in
}

// grpcError turns an ingest error into a status with the same message; a
// 429 carries RetryInfo.
func grpcError(err error) error {
	s := statusOf(err)
	msg := "internal error"
	var e *Error
	if errors.As(err, &e) {
		msg = e.Msg
	}
	st := grpcstatus.New(s.grpc, msg)
	if e != nil && e.RetryAfter > 0 {
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)}); derr == nil {
			st = d
		}
	}
	return st.Err()
}
