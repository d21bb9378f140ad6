package main

import (
	"context"

	"github.com/samsa-dev/samsa/cmd/samsa/dev"
	"github.com/samsa-dev/samsa/cmd/samsa/send"
	"github.com/samsa-dev/samsa/cmd/samsa/sink"
)

// The commands that live in packages of their own.
func init() {
	register(&command{name: "dev", summary: "run all of Samsa in one process on an embedded broker", run: func(ctx context.Context, e *env, args []string) error {
		return dev.Main(ctx, args, e.stdout)
	}})
	register(&command{name: "send", summary: "post events to a source through the receiver", run: func(ctx context.Context, e *env, args []string) error {
		return send.Main(ctx, args, e.stdout)
	}})
	register(&command{name: "sink", summary: "a webhook receiver that prints what it gets", run: func(ctx context.Context, e *env, args []string) error {
		return sink.Main(ctx, args, e.stdout)
	}})
}
