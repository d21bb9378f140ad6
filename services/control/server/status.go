package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/flow"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// GetFlowStatus reports a flow's state and numbers: paused or in a
// maintenance window from its definition, and counts, rates, lag, latency,
// errors and the breaker from the data plane (see flowStats).
func (s *flowService) GetFlowStatus(ctx context.Context, req *samsav1.GetFlowStatusRequest) (*samsav1.FlowStatus, error) {
	f, err := s.res.Flow(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	now := s.now()
	st := configuredStatus(f, now)
	if s.stats != nil {
		src, _ := s.res.Source(ctx, f.GetSource())
		s.stats.fill(ctx, f, src, st, now)
		if depth, err := dlq.Depth(ctx, s.kcl, f.GetName()); err == nil {
			st.DlqDepth = depth
		}
		s.stats.addHistory(st, -1)
	}
	return st, nil
}

// configuredStatus is the status of f at now as far as its configuration
// decides it.
func configuredStatus(f *samsav1.Flow, now time.Time) *samsav1.FlowStatus {
	st := &samsav1.FlowStatus{
		Name:       f.GetName(),
		State:      "active",
		Counts:     &samsav1.StageCounts{},
		Rates:      &samsav1.StageRates{},
		UpdateTime: timestamppb.New(now),
	}
	if next, ok := flow.NextMaintenance(f.GetDelivery(), now); ok {
		st.NextMaintenance = timestamppb.New(next.Start)
	}
	switch w, inWindow := flow.Maintenance(f.GetDelivery(), now); {
	case f.GetPaused():
		st.State, st.Reason = "paused", "paused by an operator (resume it to deliver again)"
	case inWindow:
		st.State = "maintenance"
		st.Reason = fmt.Sprintf("maintenance window %q until %s", w.Window.GetName(), w.End.UTC().Format(time.RFC3339))
	}
	return st
}
