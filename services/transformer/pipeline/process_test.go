package pipeline

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/kafka"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// transformerBinary builds the transformer command once per test binary.
func transformerBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "samsa-transformer-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "transformer")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/samsa-dev/samsa/services/transformer").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is a transformer process.
type proc struct {
	cmd   *exec.Cmd
	log   *bytes.Buffer
	admin string
	done  chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (e *env) startProc(t *testing.T, txnID string) *proc {
	t.Helper()
	// The binary also publishes statistics, as in a deployment.
	e.ensure(kafka.StatsTopicSpec())
	admin := freeAddr(t)
	cmd := exec.Command(transformerBinary(t),
		"--kafka-brokers", strings.Join(e.cfg.Brokers, ","),
		"--kafka-replication-factor", "1",
		"--flows-topic", e.flowsTopic,
		"--group", e.group,
		"--transactional-id", txnID,
		"--admin-addr", admin,
		"--session-timeout", "6s",
		"--max-batch", "500",
		"--log-level", "info",
	)
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: &buf.Buffer, admin: admin, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			buf.mu.Lock()
			t.Logf("transformer %s (pid %d) output:\n%s", txnID, cmd.Process.Pid, tail(buf.String(), 6000))
			buf.mu.Unlock()
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// term stops the process gracefully and checks that it exited cleanly.
func (p *proc) term(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("transformer exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("transformer did not exit within 60s of SIGTERM")
	}
}

func (p *proc) get(path string) (int, string) {
	resp, err := http.Get("http://" + p.admin + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestKillAndRestart kills the transformer process (SIGKILL) twice in the
// middle of a stream and restarts it: a read_committed reader of the
// delivery topic sees every expected output exactly once.
func TestKillAndRestart(t *testing.T) {
	e := newEnv(t)
	src := e.topic(3)
	e.putSource(&samsav1.Source{Name: "payments", Topic: src, Format: "envelope"})
	fl := flowName("kill")
	e.flowTopics(fl, 3)
	e.putFlow(&samsav1.Flow{Name: fl, Source: "payments",
		Transform: "def transform(event):\n    d = event.data\n    if d[\"n\"] % 10 == 0:\n        return [d, {\"n\": d[\"n\"], \"audit\": True}]\n    return {\"n\": d[\"n\"], \"kind\": d[\"kind\"]}\n"})

	txnID := e.txnPrefix + "-proc"
	p := e.startProc(t, txnID)
	waitFor(t, time.Minute, "ready", func() bool { code, _ := p.get("/readyz"); return code == http.StatusOK })

	// A stream of a few thousand events a second for 15-20 seconds,
	// killed twice in the middle.
	const total = 50000
	var produced atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i += 100 {
			e.produce(src, events("payments", i, 100, strings.Repeat("x", 150)))
			produced.Store(int64(i + 100))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for _, at := range []int64{total / 10, total / 2} {
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d records committed", at), func() bool { return e.committed(src) >= at })
		p.kill(t)
		t.Logf("killed the transformer after %d committed, %d produced", e.committed(src), produced.Load())
		p = e.startProc(t, txnID)
	}
	<-done
	waitFor(t, 2*time.Minute, "every record committed", func() bool { return e.committed(src) >= total })

	// The admin server of the last process.
	waitFor(t, 10*time.Second, "ready", func() bool { code, _ := p.get("/readyz"); return code == http.StatusOK })
	if code, body := p.get("/metrics"); code != http.StatusOK ||
		!strings.Contains(body, `samsa_transformer_events_in_total{flow="`+fl+`"}`) ||
		!strings.Contains(body, `samsa_transformer_transform_seconds_bucket{flow="`+fl+`"`) {
		t.Fatalf("/metrics: %d\n%s", code, tail(body, 3000))
	}
	p.term(t)

	var want []string
	for i := 0; i < total; i++ {
		id := fmt.Sprintf("e%07d", i)
		want = append(want, id)
		if i%10 == 0 {
			want = append(want, id+"#1")
		}
	}
	out := e.read("samsa.out."+fl, len(want), 2*time.Minute)
	checkExactlyOnce(t, "outputs", out, want)
}
