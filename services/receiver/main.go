// Command receiver is Samsa's ingest front door: HTTP and gRPC in, the
// Avro envelope out to each source's topic. See services/receiver/ingest.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/samsa-dev/samsa/pkg/config"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	"github.com/samsa-dev/samsa/services/receiver/ingest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg  ingest.Config
		kcfg kafka.Config
		lcfg telemetry.LogConfig
		tcfg telemetry.TraceConfig
	)
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	kcfg.RegisterFlags(fs)
	lcfg.RegisterFlags(fs)
	tcfg.RegisterFlags(fs)
	if err := config.Parse(fs, os.Args[1:]); err != nil {
		return err
	}
	log, err := telemetry.NewLogger(lcfg, "receiver")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	stopTracing, err := telemetry.SetupTracing(context.Background(), tcfg, "receiver")
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.Background()) }()

	r, err := ingest.New(cfg, &kcfg, nil, log, telemetry.NewRegistry())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return r.Run(ctx)
}
