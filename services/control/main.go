// Command control is Samsa's control service: the samsa.v1 gRPC API, its
// REST mapping, and the only writer of samsa.flows.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/config"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	"github.com/samsa-dev/samsa/services/control/server"
)

// Config is everything the control binary is configured with.
type Config struct {
	Kafka   kafka.Config
	Log     telemetry.LogConfig
	Control server.Config
}

func main() {
	var cfg Config
	fs := flag.NewFlagSet("control", flag.ExitOnError)
	cfg.Kafka.RegisterFlags(fs)
	cfg.Log.RegisterFlags(fs)
	cfg.Control.RegisterFlags(fs)
	if err := config.Parse(fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log, err := telemetry.NewLogger(cfg.Log, "control")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(cfg.Control, log, telemetry.NewRegistry(), &cfg.Kafka)
	if err != nil {
		log.Fatal("control service cannot start", zap.Error(err))
	}
	if err := srv.Run(ctx); err != nil {
		log.Fatal("control service failed", zap.Error(err))
	}
	log.Info("control service stopped")
}
