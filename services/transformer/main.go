// Command transformer runs every flow's filter and transform, from source
// topics to delivery topics, exactly once. See services/transformer/pipeline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/config"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	"github.com/samsa-dev/samsa/services/transformer/pipeline"
)

// Config is the transformer binary's configuration.
type Config struct {
	Pipeline   pipeline.Config
	Kafka      kafka.Config
	Log        telemetry.LogConfig
	Trace      telemetry.TraceConfig
	AdminAddr  string
	FlowsTopic string
	Pprof      bool
}

func (c *Config) registerFlags(fs *flag.FlagSet) {
	c.Pipeline.RegisterFlags(fs)
	c.Kafka.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
	c.Trace.RegisterFlags(fs)
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:8082", "address of the admin HTTP server (/metrics, /healthz, /readyz)")
	fs.BoolVar(&c.Pprof, "pprof", false, "also serve Go's profiles at /debug/pprof/ on the admin address (unauthenticated: keep the address private)")
	fs.StringVar(&c.FlowsTopic, "flows-topic", kafka.FlowsTopic, "topic holding sources and flows")
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "transformer:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg Config
	fs := flag.NewFlagSet("transformer", flag.ContinueOnError)
	cfg.registerFlags(fs)
	if err := config.Parse(fs, os.Args[1:]); err != nil {
		return err
	}
	log, err := telemetry.NewLogger(cfg.Log, "transformer")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	stopTracing, err := telemetry.SetupTracing(context.Background(), cfg.Trace, "transformer")
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.Background()) }()

	reg := telemetry.NewRegistry()
	store, err := flow.NewStore(&cfg.Kafka, log, flow.WithTopic(cfg.FlowsTopic))
	if err != nil {
		return err
	}
	// Statistics reports ride in the pipeline's transactions: exactly the
	// work that committed is counted.
	host, _ := os.Hostname()
	rec := stats.NewRecorder("transformer", stats.InstanceID(host))
	p, err := pipeline.New(cfg.Pipeline, &cfg.Kafka, store, log, reg,
		pipeline.WithCounters(rec),
		pipeline.WithTxnRecords(func() []*kgo.Record { return rec.Records(time.Now(), false) }))
	if err != nil {
		return err
	}
	health := telemetry.NewHealth()
	health.Add("flows", telemetry.ChanCheck(store.Ready(), "flow store not caught up"))
	health.Add("pipeline", p.Ready)
	ln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Reports also go out every few seconds outside the transactions, so the
	// counts of the last transaction before a quiet spell are not held back
	// until the next one. They count committed work only either way.
	statsCl, err := cfg.Kafka.NewClient(log)
	if err != nil {
		return err
	}
	defer statsCl.Close()
	statsCtx, stopStats := context.WithCancel(context.Background())
	statsDone := make(chan struct{})
	go func() { defer close(statsDone); stats.Publish(statsCtx, statsCl, rec, 2*time.Second, log) }()
	defer func() { stopStats(); <-statsDone }()
	storeCtx, stopStore := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = store.Run(storeCtx) }()
	go func() {
		defer wg.Done()
		errs[1] = telemetry.Serve(ctx, telemetry.AdminServer(reg, health, adminOpts(cfg.Pprof)...), ln, 5*time.Second, log)
	}()
	// The pipeline drains (commits its batch, leaves the group) before the
	// store stops.
	errs[2] = p.Run(ctx)
	stop()
	stopStore()
	wg.Wait()
	return errors.Join(errs...)
}

func adminOpts(pprof bool) []telemetry.AdminOpt {
	if pprof {
		return []telemetry.AdminOpt{telemetry.WithProfiling()}
	}
	return nil
}
