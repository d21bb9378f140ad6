package server

import (
	"context"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// sourceService implements samsav1.SourceService. Every response goes
// through flow.RedactSource: secrets never leave the service.
type sourceService struct {
	samsav1.UnimplementedSourceServiceServer
	res *flow.Resources
	m   *metrics
	// ingest holds the receiver's metrics when it runs in this process
	// (ListSourceStatuses); may be nil.
	ingest prometheus.Gatherer
	// agg sums the receivers' source reports (ListSourceStatuses); may be
	// nil.
	agg *stats.Aggregator
}

func (s *sourceService) GetSource(ctx context.Context, req *samsav1.GetSourceRequest) (*samsav1.Source, error) {
	src, err := s.res.Source(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return flow.RedactSource(src), nil
}

func (s *sourceService) ListSources(ctx context.Context, _ *samsav1.ListSourcesRequest) (*samsav1.ListSourcesResponse, error) {
	srcs, err := s.res.Sources(ctx)
	if err != nil {
		return nil, err
	}
	out := &samsav1.ListSourcesResponse{Sources: make([]*samsav1.Source, len(srcs))}
	for i, src := range srcs {
		out.Sources[i] = flow.RedactSource(src)
	}
	return out, nil
}

func (s *sourceService) PutSource(ctx context.Context, req *samsav1.PutSourceRequest) (*samsav1.PutSourceResponse, error) {
	src, result, err := s.res.PutSource(ctx, req.GetSource())
	if err != nil {
		return nil, err
	}
	s.m.writes.WithLabelValues("source", string(result)).Inc()
	return &samsav1.PutSourceResponse{Source: flow.RedactSource(src), Result: string(result)}, nil
}

func (s *sourceService) DeleteSource(ctx context.Context, req *samsav1.DeleteSourceRequest) (*samsav1.DeleteSourceResponse, error) {
	if err := s.res.DeleteSource(ctx, req.GetName(), req.GetVersion()); err != nil {
		return nil, err
	}
	return &samsav1.DeleteSourceResponse{}, nil
}
