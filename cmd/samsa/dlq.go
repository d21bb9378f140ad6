package main

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func init() {
	register(&command{name: "dlq", summary: "dead letters of a flow: dlq redrive FLOW", run: runDLQ})
}

func runDLQ(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "redrive" {
		return usagef("usage: samsa dlq redrive FLOW [--filter EXPR] [--since TIME] [--until TIME]")
	}
	var f apiFlags
	var filter, since, until string
	fs := newFlagSet("dlq redrive", "FLOW [--filter EXPR] [--since TIME] [--until TIME]", e)
	f.register(fs, e, false)
	fs.StringVar(&filter, "filter", "", `redrive only dead letters this expression keeps (e.g. 'event.type == "order.created"')`)
	fs.StringVar(&since, "since", "", "redrive only what was dead-lettered since this time: RFC 3339, or a duration ago (e.g. 2h)")
	fs.StringVar(&until, "until", "", "... and until this time (same forms)")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "dlq redrive FLOW"); err != nil {
		return err
	}
	if err := checkName("flow", pos[0]); err != nil {
		return err
	}
	now := time.Now()
	req := &samsav1.RedriveDLQRequest{Filter: filter}
	if req.Since, err = timeArg("--since", since, now); err != nil {
		return err
	}
	if req.Until, err = timeArg("--until", until, now); err != nil {
		return err
	}
	var last *samsav1.RedriveDLQProgress
	err = f.client().stream(ctx, path("/v1/flows/%s/dlq:redrive", pos[0]), req,
		func() proto.Message { return &samsav1.RedriveDLQProgress{} },
		func(m proto.Message) {
			last = m.(*samsav1.RedriveDLQProgress)
			fmt.Fprintf(e.stderr, "\rscanned %d/%d, redriven %d", last.GetScanned(), last.GetTotal(), last.GetRedriven())
		})
	if last != nil {
		fmt.Fprintln(e.stderr)
	}
	if err != nil {
		return err
	}
	if last == nil || !last.GetDone() {
		return fmt.Errorf("the redrive of %s ended before it was done", pos[0])
	}
	fmt.Fprintf(e.stdout, "flow/%s: redrove %d of %d dead letters\n", pos[0], last.GetRedriven(), last.GetScanned())
	return nil
}

// timeArg parses an RFC 3339 time or a duration before now.
func timeArg(flag, v string, now time.Time) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return timestamppb.New(t), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return timestamppb.New(now.Add(-d)), nil
	}
	return nil, usagef("%s %q: want an RFC 3339 time (2024-05-01T10:00:00Z) or a duration ago (2h)", flag, v)
}
