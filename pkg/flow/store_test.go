package flow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }

// replica is one control replica: a store and a writer on the same topic.
type replica struct {
	store  *Store
	writer *Writer
}

func startReplica(t *testing.T, cfg *kafka.Config, topic string) *replica {
	t.Helper()
	log := zaptest.NewLogger(t)
	st, err := NewStore(cfg, log, WithTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx) }()
	w := NewWriter(cfg, st, log)
	t.Cleanup(func() { w.Close(); cancel(); <-done })
	select {
	case <-st.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("store not ready in 30s")
	}
	return &replica{st, w}
}

// putSource writes src if the stored version equals version.
func putSource(ctx context.Context, w *Writer, src *samsav1.Source, version int64) (int64, error) {
	return w.Write(ctx, func(snap *Snapshot) (string, []byte, error) {
		cur, ok := snap.Sources[src.Name]
		switch {
		case version != 0 && !ok:
			return "", nil, ErrNotFound
		case version != 0 && cur.Version != version:
			return "", nil, fmt.Errorf("%w: have %d, want %d", ErrConflict, cur.Version, version)
		}
		b, err := proto.Marshal(src)
		return Key(KindSource, src.Name), b, err
	})
}

func TestStoreTwoReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := &kafka.Config{Brokers: kafkatest.Brokers(t)}
	topic := kafkatest.Topic(t)
	cl, err := cfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	spec := kafka.FlowsTopicSpec()
	spec.Name = topic
	if err := cfg.EnsureTopics(ctx, cl, spec); err != nil {
		t.Fatal(err)
	}

	a := startReplica(t, cfg, topic)
	b := startReplica(t, cfg, topic)

	v1, err := putSource(ctx, a.writer, &samsav1.Source{Name: "orders", Format: "envelope"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Visible on the other replica within a second.
	deadline := time.Now().Add(time.Second)
	for {
		if s, ok := b.store.Source("orders"); ok && s.Version == v1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("write on replica a not visible on replica b within 1s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Concurrent writes with the same version: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []*replica{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = putSource(ctx, r.writer, &samsav1.Source{Name: "orders", Description: fmt.Sprint("by ", i)}, v1)
		}()
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrConflict):
			conflict++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 || conflict != 1 {
		t.Fatalf("concurrent writes: %d won, %d conflicted; want 1 and 1 (%v)", ok, conflict, errs)
	}

	// Delete with a tombstone; a new replica replays the same state.
	if _, err := a.writer.Write(ctx, func(*Snapshot) (string, []byte, error) { return Key(KindSource, "orders"), nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := putSource(ctx, b.writer, &samsav1.Source{Name: "payments"}, 0); err != nil {
		t.Fatal(err)
	}
	c := startReplica(t, cfg, topic)
	snap := c.store.Snapshot()
	if _, ok := snap.Sources["orders"]; ok {
		t.Fatal("deleted source replayed")
	}
	if p, ok := snap.Sources["payments"]; !ok || p.Version == 0 {
		t.Fatalf("payments not replayed: %v", p)
	}
}
