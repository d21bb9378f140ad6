package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
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

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	"github.com/samsa-dev/samsa/pkg/pgtest"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestMain(m *testing.M) {
	code := kafkatest.RunMain(m)
	pgtest.Shutdown()
	os.Exit(code)
}

const signingSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// hook records deliveries: for each payload, the webhook-ids it came with.
type hook struct {
	mu    sync.Mutex
	ids   map[string]map[string]bool // payload -> webhook-ids
	count int
	bad   int // requests whose signature did not verify
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ok := verify(r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body, r.Header.Get("webhook-signature"))
	h.mu.Lock()
	defer h.mu.Unlock()
	if !ok {
		h.bad++
		w.WriteHeader(401)
		return
	}
	p := string(body)
	if h.ids[p] == nil {
		h.ids[p] = map[string]bool{}
	}
	h.ids[p][r.Header.Get("webhook-id")] = true
	h.count++
	w.WriteHeader(204)
}

func (h *hook) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ids)
}

// verify checks a Standard Webhooks signature from the specification.
func verify(id, ts string, body []byte, header string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(signingSecret, "whsec_"))
	if err != nil || id == "" || ts == "" {
		return false
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(header) {
		if v, sig, ok := strings.Cut(s, ","); ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited; err is then set
	err  error
	log  *bytes.Buffer
}

func startDeliverer(t *testing.T, bin string, args []string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{}), log: &bytes.Buffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = append(os.Environ(), "SAMSA_SECRET_KEYS=")
	// Killed with the test binary, should it die first (a timeout).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The deliverer killed with SIGKILL mid-stream and restarted: every event
// reaches the HTTP destination at least once, always with the same
// webhook-id; PostgreSQL holds exactly one row per event; the Kafka
// destination, read with read_committed, holds exactly one record per event.
func TestKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the deliverer binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "deliverer")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	kcfg := &kafka.Config{Brokers: kafkatest.Brokers(t), ReplicationFactor: 1}
	cl, err := kcfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	flowsTopic := kafkatest.Topic(t)
	spec := kafka.FlowsTopicSpec()
	spec.Name = flowsTopic
	suffix := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
	httpFlow, pgFlow, kafkaFlow := "kh"+suffix, "kp"+suffix, "kk"+suffix
	destTopic := "kill-dest-" + suffix
	specs := []kafka.TopicSpec{spec, {Name: destTopic, Partitions: 3, Replication: 1}}
	for _, f := range []string{httpFlow, pgFlow, kafkaFlow} {
		specs = append(specs, kafka.TopicSpec{Name: kafka.DeliveryTopic(f), Partitions: 3, Replication: 1},
			kafka.TopicSpec{Name: kafka.DLQTopic(f), Partitions: 3, Replication: 1})
	}
	if err := kcfg.EnsureTopics(ctx, cl, specs...); err != nil {
		t.Fatal(err)
	}

	h := &hook{ids: map[string]map[string]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	dsn := pgtest.DSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE events (event_id text PRIMARY KEY, payload jsonb NOT NULL)`); err != nil {
		t.Fatal(err)
	}

	// Rate-limited so that the kill surely comes mid-stream.
	delivery := &samsav1.Delivery{Retry: &samsav1.Retry{InitialBackoff: "20ms", MaxBackoff: "200ms"}, RampUp: "0s",
		RateLimit: &samsav1.RateLimit{PerSecond: 2500, Burst: 200}}
	flows := []*samsav1.Flow{
		{Name: httpFlow, Source: "s", Delivery: delivery, Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{
			Url: "http://" + ln.Addr().String() + "/hook", SigningSecret: signingSecret, AllowPrivateNetwork: true}}}},
		{Name: pgFlow, Source: "s", Delivery: delivery, Destination: &samsav1.Destination{Kind: &samsav1.Destination_Postgres{Postgres: &samsav1.PostgresDestination{
			Dsn: dsn, Table: "events"}}}},
		{Name: kafkaFlow, Source: "s", Delivery: delivery, Destination: &samsav1.Destination{Kind: &samsav1.Destination_Kafka{Kafka: &samsav1.KafkaDestination{
			Topic: destTopic}}}},
	}
	for _, f := range flows {
		b, _ := proto.Marshal(f)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: flowsTopic, Key: []byte(flow.Key(flow.KindFlow, f.Name)), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	const n = 6000
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			key := fmt.Sprintf("k%d", i%37)
			ev := &event.Event{ID: fmt.Sprintf("ev-%s-%d", suffix, i), Source: "s", Type: "t", Key: key, Time: time.Now(),
				ContentType: "application/json", Data: []byte(fmt.Sprintf(`{"i":%d,"key":%q}`, i, key))}
			v, err := event.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{httpFlow, pgFlow, kafkaFlow} {
				recs = append(recs, &kgo.Record{Topic: kafka.DeliveryTopic(f), Key: []byte(key), Value: v})
			}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{
		"--kafka-brokers", strings.Join(kcfg.Brokers, ","), "--flows-topic", flowsTopic,
		"--consumer-group", "kill-" + suffix, "--instance-id", "kill-" + suffix,
		"--admin-addr", "127.0.0.1:0", "--commit-interval", "200ms", "--session-timeout", "6s",
		"--log-level", "warn",
	}
	rows := func() int {
		var c int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	produce(0, n)
	p := startDeliverer(t, bin, args)
	waitFor(t, 60*time.Second, "deliveries under way", func() bool {
		return h.distinct() >= n/5 && rows() >= n/5 && countCommitted(t, ctx, cl, destTopic) >= n/5
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	atKill := []int{h.distinct(), rows(), len(readCommitted(t, ctx, cl, kcfg, destTopic))}
	t.Logf("killed after %d HTTP deliveries, %d rows, %d Kafka records", atKill[0], atKill[1], atKill[2])
	for _, c := range atKill {
		if c >= n {
			t.Fatalf("the kill came after the end of the stream (%v): the test proves nothing", atKill)
		}
	}

	p2 := startDeliverer(t, bin, args)
	// The topic's last stable offsets also count transaction markers and
	// the records of the transactions the kill aborted: they reach n
	// before the last transactions commit, so the records are counted.
	waitFor(t, 2*time.Minute, "every event delivered after the restart", func() bool {
		return h.distinct() == n && rows() == n && countCommitted(t, ctx, cl, destTopic) >= n &&
			len(readCommitted(t, ctx, cl, kcfg, destTopic)) >= n
	})

	h.mu.Lock()
	for payload, ids := range h.ids {
		if len(ids) != 1 {
			t.Errorf("payload %s delivered with webhook-ids %v", payload, ids)
		}
	}
	dups, bad := h.count-len(h.ids), h.bad
	h.mu.Unlock()
	if bad > 0 {
		t.Errorf("%d requests with signatures that do not verify", bad)
	}
	t.Logf("HTTP: %d events, %d duplicate deliveries after the kill", n, dups)
	if r := rows(); r != n {
		t.Errorf("%d rows, want %d", r, n)
	}
	recs := readCommitted(t, ctx, cl, kcfg, destTopic)
	seen := map[string]int{}
	for _, r := range recs {
		for _, hd := range r.Headers {
			if hd.Key == "samsa-event-id" {
				seen[string(hd.Value)]++
			}
		}
	}
	if len(recs) != n || len(seen) != n {
		t.Errorf("Kafka destination: %d records, %d distinct events, want %d each", len(recs), len(seen), n)
	}
	shown := 0
	for id, c := range seen {
		if c != 1 && shown < 5 {
			shown++
			t.Errorf("event %s written %d times to the Kafka destination", id, c)
			for _, r := range recs {
				for _, hd := range r.Headers {
					if hd.Key == "samsa-event-id" && string(hd.Value) == id {
						t.Logf("  partition %d offset %d producer %d/%d time %v", r.Partition, r.Offset, r.ProducerID, r.ProducerEpoch, r.Timestamp)
					}
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("first process:\n%s", p.log)
		t.Logf("second process:\n%s", p2.log)
	}
	// A clean stop drains and exits 0.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.done:
		if p2.err != nil {
			t.Errorf("deliverer exited with %v after SIGTERM\n%s", p2.err, p2.log)
		}
	case <-time.After(40 * time.Second):
		t.Errorf("deliverer did not stop on SIGTERM")
	}
}

func countCommitted(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) int64 {
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n // counts transaction markers too: an upper bound
}

func readCommitted(t *testing.T, ctx context.Context, cl *kgo.Client, kcfg *kafka.Config, topic string) []*kgo.Record {
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	rc, err := kcfg.NewClient(nil, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := rc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}
