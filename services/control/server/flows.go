package server

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// flowService implements samsav1.FlowService. Status is in status.go,
// the dead-letter redrive in redrive.go.
type flowService struct {
	samsav1.UnimplementedFlowServiceServer
	res *flow.Resources
	m   *metrics
	now func() time.Time
	kcl *kgo.Client // the admin client, for redrives
	// stats completes statuses with the data plane's numbers; nil leaves
	// them at what the definition alone says.
	stats *flowStats
	// rec counts redriven dead letters (published to samsa.stats).
	rec *stats.Recorder
}

func (s *flowService) GetFlow(ctx context.Context, req *samsav1.GetFlowRequest) (*samsav1.Flow, error) {
	f, err := s.res.Flow(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return flow.RedactFlow(f), nil
}

func (s *flowService) ListFlows(ctx context.Context, req *samsav1.ListFlowsRequest) (*samsav1.ListFlowsResponse, error) {
	fs, err := s.res.Flows(ctx, req.GetSource())
	if err != nil {
		return nil, err
	}
	out := &samsav1.ListFlowsResponse{Flows: make([]*samsav1.Flow, len(fs))}
	for i, f := range fs {
		out.Flows[i] = flow.RedactFlow(f)
	}
	return out, nil
}

func (s *flowService) PutFlow(ctx context.Context, req *samsav1.PutFlowRequest) (*samsav1.PutFlowResponse, error) {
	f, result, err := s.res.PutFlow(ctx, req.GetFlow())
	if err != nil {
		return nil, err
	}
	s.m.writes.WithLabelValues("flow", string(result)).Inc()
	return &samsav1.PutFlowResponse{Flow: flow.RedactFlow(f), Result: string(result)}, nil
}

func (s *flowService) DeleteFlow(ctx context.Context, req *samsav1.DeleteFlowRequest) (*samsav1.DeleteFlowResponse, error) {
	if err := s.res.DeleteFlow(ctx, req.GetName(), req.GetVersion()); err != nil {
		return nil, err
	}
	return &samsav1.DeleteFlowResponse{}, nil
}

func (s *flowService) PauseFlow(ctx context.Context, req *samsav1.PauseFlowRequest) (*samsav1.Flow, error) {
	f, err := s.res.SetPaused(ctx, req.GetName(), true)
	if err != nil {
		return nil, err
	}
	return flow.RedactFlow(f), nil
}

func (s *flowService) ResumeFlow(ctx context.Context, req *samsav1.ResumeFlowRequest) (*samsav1.Flow, error) {
	f, err := s.res.SetPaused(ctx, req.GetName(), false)
	if err != nil {
		return nil, err
	}
	return flow.RedactFlow(f), nil
}
