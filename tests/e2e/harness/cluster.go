// Package harness runs Samsa end to end for tests: the binaries built once
// per test binary, a real Kafka broker of the test's own, each service as a
// separate process on free loopback ports, an HTTP destination whose
// behaviour the test switches, a load generator and a checker.
//
// Everything a harness starts is stopped by t.Cleanup: processes run in
// their own process group and are killed with it.
package harness

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/kafkatest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// RunMain runs the package's tests and removes the binaries built for them.
// Call it from TestMain: os.Exit(harness.RunMain(m)).
func RunMain(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

// Bin returns the path of a Samsa binary (control, receiver, transformer,
// deliverer, samsa), building all of them on the first call.
func Bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		binDir, err = os.MkdirTemp("", "samsa-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator),
			"./cmd/samsa", "./services/control", "./services/receiver", "./services/transformer", "./services/deliverer")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("harness: build binaries: %v", buildErr)
	}
	return filepath.Join(binDir, name)
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/samsa-dev/samsa\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: module root not found")
		}
		dir = parent
	}
}

// FreeAddr returns a free 127.0.0.1 address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Cluster is a broker and the processes of the four services.
type Cluster struct {
	t      testing.TB
	Broker *kafkatest.Broker
	// Token is the admin token of the control API.
	Token string
	// SecretKeys is the --secret-keys value every service shares.
	SecretKeys string
	logDir     string

	mu    sync.Mutex
	procs []*Proc
	// First replicas, for addresses.
	control, receiver *Proc
}

// NewCluster starts a broker of the test's own. Services are started with
// StartAll or Start.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	Bin(t, "control") // build before the broker's start clock runs
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := kafkatest.Start(ctx)
	if err != nil {
		t.Fatalf("harness: broker: %v", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	c := &Cluster{t: t, Broker: b, Token: hex.EncodeToString(tok),
		SecretKeys: "k1:" + base64.StdEncoding.EncodeToString(key), logDir: t.TempDir()}
	t.Cleanup(func() {
		c.StopAll()
		if t.Failed() {
			c.dumpLogs()
		}
		b.Close()
	})
	return c
}

// Brokers is the --kafka-brokers value.
func (c *Cluster) Brokers() string { return c.Broker.Addr() }

// KafkaClient returns a client on the cluster's broker, closed at cleanup.
func (c *Cluster) KafkaClient(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers())}, opts...)...)
	if err != nil {
		c.t.Fatalf("harness: kafka client: %v", err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// StartAll starts one replica of each service and waits until all are ready.
func (c *Cluster) StartAll() {
	c.t.Helper()
	c.Start("control", "control-1")
	c.Start("receiver", "receiver-1")
	c.Start("transformer", "transformer-1")
	c.Start("deliverer", "deliverer-1")
}

// ControlURL is the base URL of the first control replica's REST API.
func (c *Cluster) ControlURL() string { return "http://" + c.control.HTTPAddr }

// ReceiverURL is the base URL of the first receiver replica.
func (c *Cluster) ReceiverURL() string { return "http://" + c.receiver.HTTPAddr }

// Control returns a client of the first control replica's API.
func (c *Cluster) Control() *Control { return c.ControlAt(c.control) }

// ControlAt returns a client of the API of control replica p.
func (c *Cluster) ControlAt(p *Proc) *Control {
	return &Control{Base: "http://" + p.HTTPAddr, Token: c.Token, HTTP: &http.Client{Timeout: 15 * time.Second}}
}

// URL is the base URL of the process's HTTP server.
func (p *Proc) URL() string { return "http://" + p.HTTPAddr }

// Proc is one service process. Its addresses stay the same across restarts.
type Proc struct {
	c        *Cluster
	Service  string
	Name     string
	HTTPAddr string // REST (control, receiver) or admin (transformer, deliverer)
	args     []string
	logPath  string
	ready    string // URL that answers 200 once the process is ready

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts a replica of service named name (unique in the cluster) and
// waits until its /readyz answers 200.
func (c *Cluster) Start(service, name string, extra ...string) *Proc {
	c.t.Helper()
	p := &Proc{c: c, Service: service, Name: name, HTTPAddr: FreeAddr(c.t),
		logPath: filepath.Join(c.logDir, name+".log")}
	p.ready = "http://" + p.HTTPAddr + "/readyz"
	common := []string{"--kafka-brokers", c.Brokers(), "--kafka-replication-factor", "1", "--log-level", "info"}
	switch service {
	case "control":
		p.args = append(common, "--http-addr", p.HTTPAddr, "--grpc-addr", FreeAddr(c.t),
			"--tokens", "admin:"+c.Token, "--secret-keys", c.SecretKeys)
	case "receiver":
		p.args = append(common, "--http-addr", p.HTTPAddr, "--grpc-addr", FreeAddr(c.t),
			"--secret-keys", c.SecretKeys)
	case "transformer":
		p.args = append(common, "--admin-addr", p.HTTPAddr, "--transactional-id", "samsa-transformer-"+name,
			"--session-timeout", "6s")
	case "deliverer":
		p.args = append(common, "--admin-addr", p.HTTPAddr, "--instance-id", name,
			"--session-timeout", "6s", "--secret-keys", c.SecretKeys)
	default:
		c.t.Fatalf("harness: unknown service %q", service)
	}
	p.args = append(p.args, extra...)
	c.mu.Lock()
	c.procs = append(c.procs, p)
	if service == "control" && c.control == nil {
		c.control = p
	}
	if service == "receiver" && c.receiver == nil {
		c.receiver = p
	}
	c.mu.Unlock()
	p.start(c.t)
	return p
}

func (p *Proc) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("harness: log: %v", err)
	}
	cmd := exec.Command(Bin(t, p.Service), p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("harness: start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	if err := WaitHTTP(context.Background(), p.ready, 60*time.Second, done); err != nil {
		t.Fatalf("harness: %s not ready: %v\n%s", p.Name, err, tail(p.logPath, 40))
	}
}

// cleanEnv is the environment without SAMSA_* variables, so that a
// developer's settings do not leak into the services.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SAMSA_") {
			env = append(env, kv)
		}
	}
	return env
}

// WaitHTTP polls url until it answers 200, the timeout passes or exited is
// closed.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		resp, err := cl.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("process exited (last: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StartProcess starts a Samsa binary (see Bin) with args outside any
// cluster and waits until readyURL answers 200. It is killed at cleanup.
func StartProcess(t testing.TB, name, binary string, args []string, readyURL string) *Proc {
	t.Helper()
	p := &Proc{Service: binary, Name: name, args: args, ready: readyURL,
		logPath: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- last lines of %s:\n%s", name, tail(p.logPath, 30))
		}
	})
	p.start(t)
	return p
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL, 0) }

// Stop sends SIGTERM and waits for a graceful exit (SIGKILL after 40 s).
func (p *Proc) Stop() { p.signal(syscall.SIGTERM, 40*time.Second) }

// PID is the process id (and process group id) of the running process, or
// 0 before it started.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process is running.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *Proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	<-done
}

// Restart starts a stopped or killed process again with the same flags and
// addresses; t is the test that fails if it does not become ready.
func (p *Proc) Restart(t testing.TB) {
	t.Helper()
	if p.Running() {
		p.Kill()
	}
	p.start(t)
}

// StopAll kills every process of the cluster.
func (c *Cluster) StopAll() {
	c.mu.Lock()
	procs := append([]*Proc(nil), c.procs...)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.Kill() }()
	}
	wg.Wait()
}

// LogTail returns the last n lines of a process's log.
func (p *Proc) LogTail(n int) string { return tail(p.logPath, n) }

func (c *Cluster) dumpLogs() {
	c.mu.Lock()
	procs := append([]*Proc(nil), c.procs...)
	c.mu.Unlock()
	for _, p := range procs {
		c.t.Logf("--- last lines of %s:\n%s", p.Name, tail(p.logPath, 25))
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
