package delivery

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/event"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// fakeDest succeeds at once, or fails the given share of attempts.
type fakeDest struct {
	failRate float64
	ok       atomic.Int64
}

func (f *fakeDest) Deliver(_ context.Context, items []destination.Item, res []destination.Result) {
	for i := range items {
		if f.failRate > 0 && rand.Float64() < f.failRate {
			res[i] = destination.Result{Class: destination.Retryable, Status: "503", Err: "HTTP 503"}
			continue
		}
		res[i] = destination.Result{Class: destination.Success}
		f.ok.Add(1)
	}
}
func (f *fakeDest) Capabilities() destination.Capabilities {
	return destination.Capabilities{MaxBatch: 1}
}
func (f *fakeDest) Close() error { return nil }

// benchEngine measures the engine alone (lanes, dispatch, outcomes,
// watermarks; no Kafka, no network): b.N events on 6 partitions and 10000
// keys through a destination that answers at once.
func benchEngine(b *testing.B, failRate float64) {
	d := &Deliverer{cfg: Config{MaxBufferedPerPartition: 1 << 30, MaxBufferedPerFlow: 1 << 30}, log: zap.NewNop(),
		m: newMetrics(nil), rec: nopRecorder{}, clock: systemClock{}}
	f := newFlowRuntime(d, "bench")
	defer f.close()
	dest := &fakeDest{failRate: failRate}
	pol, err := parsePolicy(&samsav1.Delivery{Retry: &samsav1.Retry{InitialBackoff: "1ms", MaxBackoff: "5ms"},
		CircuitBreaker: &samsav1.CircuitBreaker{FailureThreshold: -1}})
	if err != nil {
		b.Fatal(err)
	}
	h := newHandle(dest, "fake")
	h.m = d.m.forFlow("bench", "fake")
	f.setConfig(&flowConfig{flow: &samsav1.Flow{Name: "bench"}, version: 1, pol: pol, dest: h})
	const parts = 6
	ids := make([]int32, parts)
	for i := range ids {
		ids[i] = int32(i)
	}
	f.addPartitions(ids)
	fetches := make([]kgo.FetchTopicPartition, parts)
	for i := 0; i < b.N; i++ {
		k := fmt.Sprintf("key-%d", i%10000)
		v, _ := event.Encode(&event.Event{ID: fmt.Sprint(i), Key: k, Data: []byte(`{}`), Time: time.Now()})
		p := i % parts
		fetches[p].Partition = int32(p)
		fetches[p].Records = append(fetches[p].Records, &kgo.Record{Partition: int32(p), Offset: int64(len(fetches[p].Records)), Key: []byte(k), Value: v})
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, ftp := range fetches {
		f.accept(ftp)
	}
	for dest.ok.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkEngine is the engine's own cost per event.
func BenchmarkEngine(b *testing.B) { benchEngine(b, 0) }

// BenchmarkEngineRetries is BenchmarkEngine with 5% of attempts failing
// and retried after 1-5ms.
func BenchmarkEngineRetries(b *testing.B) { benchEngine(b, 0.05) }
