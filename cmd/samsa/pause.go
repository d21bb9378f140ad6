package main

import (
	"context"
	"fmt"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func init() {
	register(&command{name: "pause", summary: "hold delivery of a flow (events wait in Kafka)", run: pauseOrResume("pause", "paused")})
	register(&command{name: "resume", summary: "resume delivery of a paused flow", run: pauseOrResume("resume", "resumed")})
}

func pauseOrResume(verb, done string) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		var f apiFlags
		fs := newFlagSet(verb, "FLOW", e)
		f.register(fs, e, false)
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		if err := wantArgs(pos, 1, 1, verb+" FLOW"); err != nil {
			return err
		}
		if err := checkName("flow", pos[0]); err != nil {
			return err
		}
		var fl samsav1.Flow
		if err := f.client().do(ctx, "POST", path("/v1/flows/%s:"+verb, pos[0]), &samsav1.PauseFlowRequest{}, &fl); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "flow/%s %s\n", fl.GetName(), done)
		return nil
	}
}
