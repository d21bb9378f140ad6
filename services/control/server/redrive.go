package server

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// RedriveDLQ streams the progress of a redrive of the flow's dead letters.
func (s *flowService) RedriveDLQ(req *samsav1.RedriveDLQRequest, ss grpc.ServerStreamingServer[samsav1.RedriveDLQProgress]) error {
	if _, err := s.res.Flow(ss.Context(), req.GetName()); err != nil {
		return err
	}
	return status.Error(codes.Unimplemented, "dead-letter redrive is not available yet")
}
