// Command deliverer delivers the events of every flow's delivery topic to
// the flow's destination (HTTP, Kafka, PostgreSQL); see package delivery.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/config"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/secret"
	"github.com/samsa-dev/samsa/pkg/stats"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	"github.com/samsa-dev/samsa/services/deliverer/delivery"
)

// Config is the deliverer's configuration: flags, each also settable as
// SAMSA_<FLAG>.
type Config struct {
	Kafka       kafka.Config
	Log         telemetry.LogConfig
	Trace       telemetry.TraceConfig
	Delivery    delivery.Config
	AdminAddr   string
	FlowsTopic  string
	Pprof       bool
	SecretKeys  config.StringList
	GCPercent   int
	MemoryLimit int64
}

func (c *Config) register(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	c.Log.RegisterFlags(fs)
	c.Trace.RegisterFlags(fs)
	c.Delivery.RegisterFlags(fs)
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:8083", "address of /metrics, /healthz and /readyz")
	fs.BoolVar(&c.Pprof, "pprof", false, "also serve Go's profiles at /debug/pprof/ on the admin address (unauthenticated: keep the address private)")
	fs.StringVar(&c.FlowsTopic, "flows-topic", kafka.FlowsTopic, "topic of sources and flows")
	fs.Var(&c.SecretKeys, "secret-keys", "keys that open the flows' secrets, comma-separated id:base64 (prefer SAMSA_SECRET_KEYS)")
	fs.IntVar(&c.GCPercent, "gc-percent", 100, "Go garbage collection target (as GOGC; ignored when GOGC is set); 0 keeps Go's default")
	fs.Int64Var(&c.MemoryLimit, "memory-limit", 0, "Go's soft memory limit in bytes (as GOMEMLIMIT; ignored when GOMEMLIMIT is set); 0: twice --max-buffered-bytes (128 MiB by default); negative: none")
}

// memoryLimit is the soft memory limit the runtime gets (0: none).
// Buffered events are bounded by --max-buffered-bytes, but Go lets the
// heap grow to twice what is live before collecting (--gc-percent 100):
// a deliverer working off a backlog with full buffers would reach twice
// its working memory. Near the limit the collector runs sooner instead.
// The default, twice the buffer budget, leaves the runtime room for the
// fetches, batches and connections beside the buffered events, so that
// it does not collect all the time.
func (c *Config) memoryLimit() (int64, error) {
	budget := c.Delivery.MaxBufferedBytes
	if budget <= 0 {
		budget = delivery.DefaultMaxBufferedBytes
	}
	switch {
	case c.MemoryLimit < 0:
		return 0, nil
	case c.MemoryLimit == 0:
		return 2 * budget, nil
	case c.MemoryLimit < budget+budget/2:
		return 0, fmt.Errorf("--memory-limit %d is below one and a half times --max-buffered-bytes (%d): the collector would run all the time", c.MemoryLimit, budget)
	}
	return c.MemoryLimit, nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "deliverer:", err)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	var cfg Config
	fs := flag.NewFlagSet("deliverer", flag.ContinueOnError)
	cfg.register(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	// The deliverer's live heap is bounded (--max-buffered-*) while it
	// allocates for every request it sends: a higher GC target trades
	// memory for CPU. 300 saved up to a fifth of the CPU in the HTTP
	// micro-benchmark, but end to end (make bench) the CPU per event was
	// the same at 100, 150 and 300 while the peak RSS of a deliverer
	// working off a backlog was 141–146, 133–179 and 205–313 MiB. So the
	// default is Go's 100; raise it where memory is plentiful. The soft
	// memory limit (--memory-limit, below) caps the heap target.
	if cfg.GCPercent > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	limit, err := cfg.memoryLimit()
	if err != nil {
		return err
	}
	if limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
	log, err := telemetry.NewLogger(cfg.Log, "deliverer")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if l := debug.SetMemoryLimit(-1); l < math.MaxInt64 {
		log.Info("soft memory limit", zap.Int64("bytes", l), zap.Bool("from_gomemlimit", os.Getenv("GOMEMLIMIT") != ""))
	}
	stopTracing, err := telemetry.SetupTracing(context.Background(), cfg.Trace, "deliverer")
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.Background()) }()
	var box *secret.Box
	if len(cfg.SecretKeys) > 0 {
		if box, err = secret.New(cfg.SecretKeys...); err != nil {
			return err
		}
	}
	store, err := flow.NewStore(&cfg.Kafka, log, flow.WithTopic(cfg.FlowsTopic))
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	host, _ := os.Hostname()
	rec := stats.NewRecorder("deliverer", stats.InstanceID(host))
	d, err := delivery.New(cfg.Delivery, &cfg.Kafka, store, box, log, reg, delivery.WithRecorder(rec))
	if err != nil {
		return err
	}
	statsCl, err := cfg.Kafka.NewClient(log)
	if err != nil {
		return err
	}
	defer statsCl.Close()
	health := telemetry.NewHealth()
	health.Add("flows", telemetry.ChanCheck(store.Ready(), "flow store catching up"))
	health.Add("consumer", telemetry.ChanCheck(d.Ready(), "consumer not started"))
	ln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	storeCtx, stopStore := context.WithCancel(context.Background())
	storeDone := make(chan error, 1)
	go func() { storeDone <- store.Run(storeCtx) }()
	adminDone := make(chan error, 1)
	go func() {
		adminDone <- telemetry.Serve(ctx, telemetry.AdminServer(reg, health, adminOpts(cfg.Pprof)...), ln, 5*time.Second, log)
	}()

	statsCtx, stopStats := context.WithCancel(context.Background())
	statsDone := make(chan struct{})
	go func() { defer close(statsDone); stats.Publish(statsCtx, statsCl, rec, 2*time.Second, log) }()

	err = d.Run(ctx) // returns after draining once ctx is done
	stopStats()      // publishes the final reports
	<-statsDone
	stopStore()
	<-storeDone
	stop()
	<-adminDone
	return err
}

func adminOpts(pprof bool) []telemetry.AdminOpt {
	if pprof {
		return []telemetry.AdminOpt{telemetry.WithProfiling()}
	}
	return nil
}
