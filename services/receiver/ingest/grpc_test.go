package ingest

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

type grpcBadCase struct {
	name string
	run  func(t *testing.T, h *harness)
}

// grpcBadCases are bad Publish calls for source and their expected status.
func grpcBadCases(source string) []grpcBadCase {
	mk := func(name string, withKey bool, src string, evs []*samsav1.IngestEvent, code codes.Code, msg string) grpcBadCase {
		return grpcBadCase{name, func(t *testing.T, h *harness) {
			conn, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx := context.Background()
			if withKey {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+apiKey)
			}
			_, err = samsav1.NewIngestServiceClient(conn).Publish(ctx, &samsav1.PublishRequest{Source: src, Events: evs})
			st := status.Convert(err)
			if st.Code() != code || !strings.Contains(st.Message(), msg) {
				t.Fatalf("Publish = %v %q, want %v containing %q", st.Code(), st.Message(), code, msg)
			}
		}}
	}
	many := make([]*samsav1.IngestEvent, 1001)
	for i := range many {
		many[i] = &samsav1.IngestEvent{Data: []byte(`1`)}
	}
	return []grpcBadCase{
		mk("invalid JSON", true, source, []*samsav1.IngestEvent{{Data: []byte(`{}`)}, {Data: []byte(`{"a":`)}}, codes.InvalidArgument, "event 2: data: line 1, column 6: invalid JSON: unexpected end of input"),
		mk("no events", true, source, nil, codes.InvalidArgument, "no events"),
		mk("too many events", true, source, many, codes.InvalidArgument, "more than 1000"),
		mk("bad id", true, source, []*samsav1.IngestEvent{{Id: "a\nb", Data: []byte(`1`)}}, codes.InvalidArgument, "id: non-printable character"),
		mk("bad attribute", true, source, []*samsav1.IngestEvent{{Data: []byte(`1`), Attributes: map[string]string{"id": "x"}}}, codes.InvalidArgument, `attribute "id" is reserved`),
		mk("missing API key", false, source, []*samsav1.IngestEvent{{Data: []byte(`1`)}}, codes.Unauthenticated, "missing credentials"),
		mk("unknown source", true, "no-such-source", []*samsav1.IngestEvent{{Data: []byte(`1`)}}, codes.NotFound, "unknown source"),
	}
}
