package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/script"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// transformService dry-runs filters and transforms in the same sandbox,
// with the same limits, as the transformer.
type transformService struct {
	samsav1.UnimplementedTransformServiceServer
	res        *flow.Resources
	maxEvents  int
	scriptOpts []script.Option
	now        func() time.Time
}

func (s *transformService) Test(ctx context.Context, req *samsav1.TestRequest) (*samsav1.TestResponse, error) {
	filter, transform, source := req.GetFilter(), req.GetTransform(), "test"
	fieldPrefix := ""
	if req.GetFlow() != "" {
		if filter != "" || transform != "" {
			return nil, fmt.Errorf("%w: flow: set flow to test a stored flow, or filter and transform, not both", flow.ErrInvalid)
		}
		f, err := s.res.Flow(ctx, req.GetFlow())
		if err != nil {
			return nil, err
		}
		filter, transform, source = f.GetFilter(), f.GetTransform(), f.GetSource()
		fieldPrefix = "flow."
	}
	if n := len(req.GetEvents()); n > s.maxEvents {
		return nil, &flow.ValidationError{Fields: []flow.FieldError{{Field: "events", Msg: fmt.Sprintf("%d events, at most %d", n, s.maxEvents)}}}
	}
	prog, err := script.Compile(filter, transform, s.scriptOpts...)
	if err != nil {
		var se *script.Error
		if errors.As(err, &se) {
			return nil, &flow.ValidationError{Fields: []flow.FieldError{{Field: fieldPrefix + se.Stage, Msg: se.Error()}}}
		}
		return nil, fmt.Errorf("%w: %v", flow.ErrInvalid, err)
	}
	resp := &samsav1.TestResponse{Results: make([]*samsav1.TestResult, 0, len(req.GetEvents()))}
	for i, te := range req.GetEvents() {
		ev, err := s.sampleEvent(te, i, source)
		if err != nil {
			return nil, err
		}
		res, err := prog.Run(ctx, ev)
		var se *script.Error
		switch {
		case errors.As(err, &se):
			resp.Results = append(resp.Results, &samsav1.TestResult{Kept: se.Stage != script.StageFilter, Error: se.Stage + ": " + se.Error()})
			continue
		case err != nil:
			return nil, err
		}
		out := &samsav1.TestResult{Kept: res.Kept}
		for _, o := range res.Outputs {
			out.Outputs = append(out.Outputs, testOutput(o))
		}
		resp.Results = append(resp.Results, out)
	}
	return resp, nil
}

// sampleEvent turns a TestEvent into an event, filling in what it leaves
// unset.
func (s *transformService) sampleEvent(te *samsav1.TestEvent, i int, source string) (*event.Event, error) {
	ev := &event.Event{
		ID:          te.GetId(),
		Source:      te.GetSource(),
		Type:        te.GetType(),
		Subject:     te.GetSubject(),
		Key:         te.GetKey(),
		ContentType: "application/json",
		Attributes:  te.GetAttributes(),
		Data:        []byte("{}"),
	}
	if ev.ID == "" {
		ev.ID = fmt.Sprintf("test-%d", i+1)
	}
	if ev.Source == "" {
		ev.Source = source
	}
	if te.GetTime() != nil {
		ev.Time = te.GetTime().AsTime()
	} else {
		ev.Time = s.now().UTC().Truncate(time.Microsecond)
	}
	if te.GetData() != nil {
		b, err := protojson.Marshal(te.GetData())
		if err != nil {
			return nil, &flow.ValidationError{Fields: []flow.FieldError{{Field: fmt.Sprintf("events[%d].data", i), Msg: err.Error()}}}
		}
		ev.Data = b
	}
	return ev, nil
}

func testOutput(o script.Output) *samsav1.TestOutput {
	out := &samsav1.TestOutput{Type: o.Type, Subject: o.Subject, Key: o.Key, Attributes: o.Attributes}
	v := &structpb.Value{}
	if ct := o.ContentType; ct == "" || strings.Contains(ct, "json") {
		if err := protojson.Unmarshal(o.Data, v); err == nil {
			out.Data = v
			return out
		}
	}
	out.Data = structpb.NewStringValue(string(o.Data))
	return out
}
