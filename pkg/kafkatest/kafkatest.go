// Package kafkatest gives tests a Kafka to talk to: a real Apache Kafka
// broker (KRaft, single node, started from the jars scripts/kafka.sh resolves
// from Maven Central) for integration tests, and an in-process kfake cluster
// for fast unit tests.
//
// Integration tests call Brokers. When SAMSA_TEST_KAFKA is set (make test
// does this) they share that broker; otherwise the first call in a test
// binary starts one, which RunMain stops when the binary exits. A test that
// cannot get a broker fails; it never skips.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvBrokers names the environment variable with the seed brokers of a
// running broker that tests share.
const EnvBrokers = "SAMSA_TEST_KAFKA"

var (
	sharedOnce   sync.Once
	sharedBroker *Broker
	sharedErr    error
)

// Brokers returns the seed brokers of a real Kafka for t: those of
// SAMSA_TEST_KAFKA, or of a broker started for this test binary.
//
// Under `go test -short` (make test-unit) tests that need a real broker are
// skipped; without -short (make test, CI) they never are.
func Brokers(t testing.TB) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Kafka broker: run without -short (make test)")
	}
	if env := os.Getenv(EnvBrokers); env != "" {
		return strings.Split(env, ",")
	}
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		sharedBroker, sharedErr = Start(ctx)
	})
	if sharedErr != nil {
		t.Fatalf("kafkatest: no Kafka broker for this test (set %s or make scripts/kafka.sh work): %v", EnvBrokers, sharedErr)
	}
	return []string{sharedBroker.Addr()}
}

// RunMain runs the tests of a package and then stops the broker Brokers may
// have started. Call it from TestMain: os.Exit(kafkatest.RunMain(m)).
func RunMain(m *testing.M) int {
	code := m.Run()
	if sharedBroker != nil {
		sharedBroker.Stop()
	}
	return code
}

// Fake starts an in-process kfake cluster for t and returns its seed
// brokers. It is closed when t ends.
func Fake(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(-1)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kafkatest: start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

var topicSeq atomic.Int64

// Topic returns a topic name unique to this test binary run, for tests that
// share a broker.
func Topic(t testing.TB) string {
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, t.Name())
	if len(n) > 80 {
		n = n[:80]
	}
	return fmt.Sprintf("t-%s-%d-%d", n, time.Now().UnixNano()%1e9, topicSeq.Add(1))
}

// Broker is a real Kafka broker process on 127.0.0.1.
type Broker struct {
	port int
	dir  string
	tmp  bool // dir is ours to remove

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result, which only start's goroutine calls
	log    *os.File
}

// Start resolves the broker's jars if needed, formats storage in a new
// temporary directory and starts a broker on a free loopback port. It
// returns once the broker answers metadata requests.
func Start(ctx context.Context) (*Broker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "samsa-kafkatest-")
	if err != nil {
		return nil, fmt.Errorf("kafkatest: temp dir: %w", err)
	}
	b := &Broker{port: port, dir: dir, tmp: true}
	if err := b.start(ctx); err != nil {
		b.Stop()
		return nil, err
	}
	return b, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// PID is the process id of the running broker's process group (the
// script and the JVM it starts), or 0 when it is stopped.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Dir is the broker's storage directory; its log is in Dir()/broker.log.
func (b *Broker) Dir() string { return b.dir }

// Restart starts a stopped broker again, on the same port with the same data.
func (b *Broker) Restart(ctx context.Context) error { return b.start(ctx) }

// Stop stops the broker cleanly (SIGTERM, then SIGKILL after 30 s). The
// storage is kept until Close.
func (b *Broker) Stop() {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.cmd, b.exited = nil, nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	if b.log != nil {
		b.log.Close()
	}
}

// Close stops the broker and removes its storage.
func (b *Broker) Close() {
	b.Stop()
	if b.tmp {
		os.RemoveAll(b.dir)
	}
}

func (b *Broker) start(ctx context.Context) error {
	script, err := scriptPath()
	if err != nil {
		return err
	}
	// Resolving the jars may take a while on a fresh machine; do it before
	// the start deadline begins.
	fetch := exec.CommandContext(ctx, script, "fetch")
	if out, err := fetch.CombinedOutput(); err != nil {
		return fmt.Errorf("kafkatest: %s fetch: %w\n%s", script, err, out)
	}
	logf, err := os.OpenFile(filepath.Join(b.dir, "broker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("kafkatest: broker log: %w", err)
	}
	cmd := exec.Command(script, "run", "--port", fmt.Sprint(b.port), "--dir", filepath.Join(b.dir, "kafka"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("kafkatest: start broker: %w", err)
	}
	exited := make(chan error, 1)
	go func() { err := cmd.Wait(); exited <- err; close(exited) }()
	b.mu.Lock()
	b.cmd, b.exited, b.log = cmd, exited, logf
	b.mu.Unlock()
	if err := waitReady(ctx, b.Addr(), exited); err != nil {
		b.Stop()
		tail, _ := os.ReadFile(filepath.Join(b.dir, "broker.log"))
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return fmt.Errorf("kafkatest: broker on %s not ready: %w\n%s", b.Addr(), err, tail)
	}
	return nil
}

// waitReady polls until the broker answers a metadata request with itself
// as a registered broker.
func waitReady(ctx context.Context, addr string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
		bs, err := adm.ListBrokers(reqCtx)
		reqCancel()
		if err == nil && len(bs) > 0 {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("broker exited: %v", err)
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func scriptPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "kafka.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("kafkatest: scripts/kafka.sh not found above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("kafkatest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
