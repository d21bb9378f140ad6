// Package dev runs the whole of Samsa in one process for development: the
// control, receiver, transformer and deliverer services over one embedded
// Kafka-protocol broker (kfake) on 127.0.0.1:9092, or over a real broker
// given with --kafka. Everything binds loopback only.
package dev

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/config"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/secret"
	"github.com/samsa-dev/samsa/pkg/stats"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	"github.com/samsa-dev/samsa/services/control/server"
	"github.com/samsa-dev/samsa/services/deliverer/delivery"
	"github.com/samsa-dev/samsa/services/receiver/ingest"
	"github.com/samsa-dev/samsa/services/transformer/pipeline"
)

// Config is the configuration of `samsa dev`.
type Config struct {
	// DataDir keeps the embedded broker's data (sources, flows, events not
	// yet delivered) and the secret key across restarts. Empty: memory only.
	DataDir string
	// Kafka is a real broker to use instead of the embedded one.
	Kafka string
	// KafkaPort is the embedded broker's port.
	KafkaPort int
	// Token, when set, is required as an admin bearer token by the control API.
	Token string
	// Tokens are more control tokens as role:token (e.g. a viewer's).
	Tokens config.StringList
	// ControlHTTP, ControlGRPC, ReceiverHTTP, ReceiverGRPC are the addresses
	// of the APIs (DESIGN.md §5).
	ControlHTTP, ControlGRPC, ReceiverHTTP, ReceiverGRPC string
	// LogLevel of the console logs.
	LogLevel string
}

// RegisterFlags binds the configuration to flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", "", "directory that keeps sources, flows and undelivered events across restarts (default: memory only)")
	fs.StringVar(&c.Kafka, "kafka", "", "use this Kafka broker (host:port, e.g. one started with `make kafka`) instead of the embedded one")
	fs.IntVar(&c.KafkaPort, "kafka-port", 9092, "port of the embedded broker on 127.0.0.1")
	fs.StringVar(&c.Token, "token", "", "require this admin bearer token on the control API (default: no auth, loopback only)")
	fs.Var(&c.Tokens, "tokens", "more control API tokens, comma-separated role:token (admin, editor or viewer); with --token or alone")
	fs.StringVar(&c.ControlHTTP, "control-http-addr", "127.0.0.1:8080", "control REST API")
	fs.StringVar(&c.ControlGRPC, "control-grpc-addr", "127.0.0.1:9090", "control gRPC API")
	fs.StringVar(&c.ReceiverHTTP, "receiver-http-addr", "127.0.0.1:8081", "ingest REST API")
	fs.StringVar(&c.ReceiverGRPC, "receiver-grpc-addr", "127.0.0.1:9091", "ingest gRPC API")
	fs.StringVar(&c.LogLevel, "log-level", "warn", "log level: debug, info, warn or error")
}

// Validate checks that every address is on loopback: `samsa dev` runs
// without auth on the data path and must never be reachable from elsewhere.
func (c *Config) Validate() error {
	var errs []error
	for name, addr := range map[string]string{
		"--control-http-addr": c.ControlHTTP, "--control-grpc-addr": c.ControlGRPC,
		"--receiver-http-addr": c.ReceiverHTTP, "--receiver-grpc-addr": c.ReceiverGRPC,
	} {
		if err := loopbackOnly(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if c.KafkaPort < 0 || c.KafkaPort > 65535 {
		errs = append(errs, fmt.Errorf("--kafka-port %d: not a port", c.KafkaPort))
	}
	if c.Kafka != "" && !strings.Contains(c.Kafka, ":") {
		errs = append(errs, fmt.Errorf("--kafka %q: want host:port", c.Kafka))
	}
	return errors.Join(errs...)
}

func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address: samsa dev listens on loopback only", addr)
	}
	return nil
}

// Main parses args (flags and SAMSA_* variables) and runs until ctx is done.
func Main(ctx context.Context, args []string, out io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("samsa dev", flag.ContinueOnError)
	fs.SetOutput(out)
	c.RegisterFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	return Run(ctx, c, out)
}

// Run runs every service until ctx is done, then stops them in order:
// the receiver first (no new events), then the transformer and deliverer
// (they finish and commit what they hold), then control and the broker.
func Run(ctx context.Context, c Config, out io.Writer) error {
	log, err := telemetry.NewLogger(telemetry.LogConfig{Level: c.LogLevel, Format: "console"}, "dev")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	brokers := c.Kafka
	if brokers == "" {
		opts := []kfake.Opt{kfake.Ports(c.KafkaPort), kfake.NumBrokers(1), kfake.DefaultNumPartitions(3)}
		if c.DataDir != "" {
			opts = append(opts, kfake.DataDir(filepath.Join(c.DataDir, "kafka")))
		}
		cluster, err := kfake.NewCluster(opts...)
		if err != nil {
			return fmt.Errorf("embedded broker on 127.0.0.1:%d: %w (is another broker running? use --kafka-port or --kafka)", c.KafkaPort, err)
		}
		defer cluster.Close()
		brokers = cluster.ListenAddrs()[0]
	}
	kcfg := &kafka.Config{Brokers: []string{brokers}, ClientID: "samsa-dev", ReplicationFactor: 1}

	key, err := secretKey(c.DataDir)
	if err != nil {
		return err
	}
	box, err := secret.New(key)
	if err != nil {
		return err
	}

	reg := telemetry.NewRegistry()
	store, err := flow.NewStore(kcfg, log.Named("flows"))
	if err != nil {
		return err
	}

	ccfg := server.DefaultConfig()
	ccfg.HTTPAddr, ccfg.GRPCAddr = c.ControlHTTP, c.ControlGRPC
	ccfg.SecretKeys = []string{key}
	if c.Token != "" {
		ccfg.Auth.Tokens = []string{"admin:" + c.Token}
	}
	ccfg.Auth.Tokens = append(ccfg.Auth.Tokens, c.Tokens...)
	if len(ccfg.Auth.Tokens) == 0 {
		ccfg.Insecure = true
	}
	control, err := server.New(ccfg, log.Named("control"), reg, kcfg, server.WithStore(store), server.WithGatherer(reg))
	if err != nil {
		return err
	}

	rcfg := ingest.DefaultConfig()
	rcfg.HTTPAddr, rcfg.GRPCAddr = c.ReceiverHTTP, c.ReceiverGRPC
	rcfg.Insecure = true
	rcfg.SecretKeys = []string{key}
	// The receiver publishes its per-source counts to samsa.stats like a
	// separate one would, and the dashboard's sources page reads them from
	// there (the in-process metrics only until the first report): often,
	// so that the page follows a developer's requests closely.
	rcfg.StatsInterval = time.Second
	receiver, err := ingest.New(rcfg, kcfg, store, log.Named("receiver"), reg, ingest.WithSecretBox(box))
	if err != nil {
		return err
	}

	trec := stats.NewRecorder("transformer", stats.InstanceID("dev"))
	var tcfg pipeline.Config
	tcfg.RegisterFlags(flag.NewFlagSet("transformer", flag.ContinueOnError))
	transformer, err := pipeline.New(tcfg, kcfg, store, log.Named("transformer"), reg,
		pipeline.WithCounters(trec), pipeline.WithTxnRecords(func() []*kgo.Record { return trec.Records(time.Now(), false) }))
	if err != nil {
		return err
	}

	drec := stats.NewRecorder("deliverer", stats.InstanceID("dev"))
	var dcfg delivery.Config
	dcfg.RegisterFlags(flag.NewFlagSet("deliverer", flag.ContinueOnError))
	deliverer, err := delivery.New(dcfg, kcfg, store, box, log.Named("deliverer"), reg, delivery.WithRecorder(drec))
	if err != nil {
		return err
	}
	statsClient, err := kcfg.NewClient(log.Named("stats"))
	if err != nil {
		return err
	}
	defer statsClient.Close()

	// Stop order: see the doc comment. Each stage gets its own context.
	storeCtx, stopStore := context.WithCancel(context.Background())
	controlCtx, stopControl := context.WithCancel(context.Background())
	workCtx, stopWork := context.WithCancel(context.Background())
	recvCtx, stopRecv := context.WithCancel(context.Background())
	defer stopStore()
	defer stopControl()
	defer stopWork()
	defer stopRecv()

	errc := make(chan error, 8)
	var storeWG, controlWG, workWG, recvWG sync.WaitGroup
	goRun := func(wg *sync.WaitGroup, name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	goRun(&storeWG, "flow store", func() error { return store.Run(storeCtx) })
	goRun(&controlWG, "control", func() error { return control.Run(controlCtx) })
	goRun(&workWG, "transformer", func() error { return transformer.Run(workCtx) })
	goRun(&workWG, "deliverer", func() error { return deliverer.Run(workCtx) })
	for _, rec := range []*stats.Recorder{trec, drec} {
		goRun(&workWG, "stats", func() error {
			stats.Publish(workCtx, statsClient, rec, 2*time.Second, log)
			return nil
		})
	}
	goRun(&recvWG, "receiver", func() error { return receiver.Run(recvCtx) })

	var runErr error
	select {
	case <-waitReady(ctx, c.ControlHTTP, c.ReceiverHTTP):
		printBanner(out, c, brokers)
		select {
		case <-ctx.Done():
		case runErr = <-errc:
		}
	case runErr = <-errc:
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "\nsamsa dev: stopping (finishing in-flight work)...")
	stopRecv()
	recvWG.Wait()
	stopWork()
	workWG.Wait()
	stopControl()
	controlWG.Wait()
	stopStore()
	storeWG.Wait()
	return runErr
}

// secretKey returns the key that seals secrets: kept in the data dir so a
// restart can open what it sealed, or new for a memory-only run.
func secretKey(dataDir string) (string, error) {
	newKey := func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return "dev:" + base64.StdEncoding.EncodeToString(b), nil
	}
	if dataDir == "" {
		return newKey()
	}
	path := filepath.Join(dataDir, "secret.key")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	k, err := newKey()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return k, nil
}

// waitReady is closed once both HTTP APIs answer /readyz with 200.
func waitReady(ctx context.Context, addrs ...string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		cl := &http.Client{Timeout: time.Second}
		for _, a := range addrs {
			for ctx.Err() == nil {
				resp, err := cl.Get("http://" + a + "/readyz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		if ctx.Err() == nil {
			close(ch)
		}
	}()
	return ch
}

func printBanner(out io.Writer, c Config, brokers string) {
	kafkaDesc := "embedded broker (kfake)"
	if c.Kafka != "" {
		kafkaDesc = "external broker"
	}
	data := "memory only (use --data-dir to keep state)"
	if c.DataDir != "" {
		data = c.DataDir
	}
	auth := "none (loopback only)"
	tokenFlag := ""
	if c.Token != "" || len(c.Tokens) > 0 {
		auth = "bearer token required on the control API"
		tokenFlag = " --token $SAMSA_TOKEN"
	}
	fmt.Fprintf(out, `
samsa dev is running.

  control API   http://%s   (gRPC %s)   /metrics /healthz /readyz
  dashboard     http://%s/ui/
  ingest API    http://%s   (gRPC %s)
  Kafka         %s   %s
  data          %s
  auth          %s

Next, in another terminal:

  bin/samsa sink                                   # a webhook receiver on 127.0.0.1:8090
  bin/samsa apply -f examples/quickstart.yaml%s
  bin/samsa send shop --type order.created '{"id":"o-1","email":"ada@example.com","amount":42.5}'
  bin/samsa status big-orders%s

Ctrl-C stops everything (in-flight work is finished first).
`, c.ControlHTTP, c.ControlGRPC, c.ControlHTTP, c.ReceiverHTTP, c.ReceiverGRPC, brokers, kafkaDesc, data, auth, tokenFlag, tokenFlag)
}
