package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/script"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// RedriveDLQ sends the flow's dead letters back to its delivery topic
// (dlq.Redrive) and streams the progress, ending with a message with done
// set. Each dead letter is redriven or kept exactly once, even when the
// call is interrupted; a second redrive continues where the first stopped.
func (s *flowService) RedriveDLQ(req *samsav1.RedriveDLQRequest, ss grpc.ServerStreamingServer[samsav1.RedriveDLQProgress]) error {
	ctx := ss.Context()
	if _, err := s.res.Flow(ctx, req.GetName()); err != nil {
		return err
	}
	opts := dlq.RedriveOptions{Filter: req.GetFilter()}
	if req.GetSince() != nil {
		opts.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		opts.Until = req.GetUntil().AsTime()
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && !opts.Since.Before(opts.Until) {
		return &flow.ValidationError{Fields: []flow.FieldError{{Field: "until", Msg: fmt.Sprintf("%s is not after since %s", opts.Until.Format(time.RFC3339), opts.Since.Format(time.RFC3339))}}}
	}
	// Redriven events count again downstream (delivered or dead-lettered):
	// report them so the flow's counts keep adding up.
	var last int64
	send := func(p *samsav1.RedriveDLQProgress) error {
		if p.GetRedriven() < last {
			last = 0 // a retried attempt counts from zero again
		}
		if d := p.GetRedriven() - last; d > 0 && s.rec != nil {
			s.rec.Add(req.GetName(), stats.Counts{Redriven: d})
		}
		last = p.GetRedriven()
		return ss.Send(p)
	}
	err := redrive(ctx, s.kcl, req.GetName(), opts, send)
	if s.rec != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.kcl.ProduceSync(pctx, s.rec.Records(time.Now(), false)...).FirstErr()
		cancel()
	}
	return err
}

// redrive runs dlq.Redrive and sends its progress with send; a failed send
// (the caller went away) stops the redrive through ctx.
func redrive(ctx context.Context, cl *kgo.Client, name string, opts dlq.RedriveOptions, send func(*samsav1.RedriveDLQProgress) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sendErr error
	progress := func(p dlq.Progress) {
		if sendErr != nil {
			return
		}
		if sendErr = send(&samsav1.RedriveDLQProgress{Scanned: p.Scanned, Total: p.Total, Redriven: p.Redriven, Done: p.Done}); sendErr != nil {
			cancel()
		}
	}
	// A redrive commits what it did chunk by chunk, so running it again
	// after a retriable Kafka error (a group coordinator still loading)
	// continues where it stopped.
	var err error
	for attempt, backoff := 0, 200*time.Millisecond; ; attempt, backoff = attempt+1, 2*backoff {
		err = dlq.Redrive(ctx, cl, name, opts, progress)
		if err == nil || sendErr != nil || attempt == 4 || !kerr.IsRetriable(err) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	var se *script.Error
	switch {
	case sendErr != nil:
		return sendErr
	case err == nil:
		return nil
	case errors.As(err, &se):
		return &flow.ValidationError{Fields: []flow.FieldError{{Field: "filter", Msg: se.Error()}}}
	case errors.Is(err, dlq.ErrInvalidFilter):
		return &flow.ValidationError{Fields: []flow.FieldError{{Field: "filter", Msg: err.Error()}}}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: redrive of %s: %w", flow.ErrUnavailable, name, err)
}
