package delivery

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
)

// produceTxn writes events to the flow's delivery topic in transactions of
// perTxn events, as the transformer does: every transaction leaves a commit
// marker in each partition it wrote.
func (e *env) produceTxn(name string, perTxn int, evs ...*event.Event) {
	e.t.Helper()
	e.writeTxn(name, perTxn, kgo.TryCommit, evs...)
}

// writeTxn is produceTxn ending each transaction with commit.
func (e *env) writeTxn(name string, perTxn int, commit kgo.TransactionEndTry, evs ...*event.Event) {
	e.t.Helper()
	cl, err := e.kcfg.NewClient(e.log, kgo.TransactionalID("txn-"+name), kgo.DefaultProduceTopic(kafka.DeliveryTopic(name)))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	for len(evs) > 0 {
		n := min(perTxn, len(evs))
		recs := make([]*kgo.Record, n)
		for i, ev := range evs[:n] {
			v, err := event.Encode(ev)
			if err != nil {
				e.t.Fatal(err)
			}
			recs[i] = &kgo.Record{Key: []byte(ev.Key), Value: v}
		}
		evs = evs[n:]
		if err := cl.BeginTransaction(); err != nil {
			e.t.Fatal(err)
		}
		if err := cl.ProduceSync(e.ctx, recs...).FirstErr(); err != nil {
			e.t.Fatal(err)
		}
		if err := cl.EndTransaction(e.ctx, commit); err != nil {
			e.t.Fatal(err)
		}
	}
}

// committedCounts sums the counts in the metadata of the test group's
// committed offsets of the flow's delivery topic.
func (e *env) committedCounts(name string) stats.Counts {
	e.t.Helper()
	offs, err := e.adm.FetchOffsets(e.ctx, e.group)
	if err != nil {
		e.t.Fatal(err)
	}
	var c stats.Counts
	for p, o := range offs[kafka.DeliveryTopic(name)] {
		pc, ok := stats.ParseCommitMetadata(o.Metadata)
		if !ok {
			e.t.Fatalf("partition %d committed at %d without counts: %q", p, o.At, o.Metadata)
		}
		c.Add(pc)
	}
	return c
}

// A deliverer that dies after delivering (and dead-lettering) events but
// before committing their offsets leaves them to the next one, which
// delivers them again. The status counts follow the committed offsets:
// each event is counted once, whatever the first deliverer reported, and
// the offsets end past the transaction markers (no lag left).
func TestCountsExactAcrossCrash(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	poison := func(seq int) bool { return seq%10 == 3 }
	rcv.setAnswer(func(_ *http.Request, body []byte) (int, http.Header) {
		if _, seq := parsePayload(body); poison(seq) {
			return http.StatusBadRequest, nil // dead-lettered
		}
		return http.StatusOK, nil
	})
	name := flowName()
	e.createTopics(name, 3)
	e.putFlow(httpFlow(name, rcv.url()))
	if err := e.kcfg.EnsureTopics(e.ctx, e.cl, kafka.StatsTopicSpec()); err != nil {
		t.Fatal(err)
	}
	evs := events(name, 300, 15) // 20 per key, seq 3 and 13 poison
	wantDead := 0
	for _, ev := range evs {
		if _, seq := parsePayload(ev.Data); poison(seq) {
			wantDead++
		}
	}
	wantDelivered := len(evs) - wantDead

	// publish runs a recorder's reports to samsa.stats, as the binary does;
	// the returned function stops it after a final report.
	publish := func(rec *stats.Recorder) func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); stats.Publish(ctx, e.cl, rec, 100*time.Millisecond, e.log) }()
		return func() { cancel(); <-done }
	}

	// The first deliverer delivers everything and dies before any commit;
	// its (final) report is published.
	rec1 := stats.NewRecorder(stats.ServiceDeliverer, name+"-1")
	stopPub1 := publish(rec1)
	d1, stop1 := e.startStoppable(WithRecorder(rec1))
	d1.noCommits.Store(true)
	e.produceTxn(name, 25, evs...)
	waitFor(t, 60*time.Second, "the first deliverer to finish every event", func() bool {
		return rcv.distinctDelivered() == wantDelivered && len(e.dlqRecords(name)) == wantDead
	})
	stop1()
	stopPub1()
	if lag := e.groupLag(name); lag < int64(len(evs)) {
		t.Fatalf("lag %d after the first deliverer: it committed offsets", lag)
	}

	// The second one does it all again, and commits.
	rec2 := stats.NewRecorder(stats.ServiceDeliverer, name+"-2")
	stopPub2 := publish(rec2)
	defer stopPub2()
	e.start(WithRecorder(rec2))
	waitFor(t, 60*time.Second, "every event delivered twice", func() bool { return len(rcv.delivered()) == 2*wantDelivered })
	// The group's lag counts offsets, markers included: zero only if the
	// committed offsets passed the trailing markers.
	waitFor(t, 20*time.Second, "offsets committed to the end", func() bool { return e.groupLag(name) == 0 })
	if n := len(e.dlqRecords(name)); n != 2*wantDead {
		t.Fatalf("%d dead letters, want %d (each poison event twice)", n, 2*wantDead)
	}

	// What the control service shows.
	agg, err := stats.NewAggregator(e.kcfg, e.log.Named("stats"), stats.DelivererGroup(e.group), stats.CommittedEvery(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(context.Background())
	adone := make(chan struct{})
	go func() { defer close(adone); _ = agg.Run(actx) }()
	defer func() { acancel(); <-adone }()
	want := stats.Counts{Delivered: int64(wantDelivered), DeadLettered: int64(wantDead)}
	counts := func() stats.Counts {
		s := agg.Flow(name)
		return stats.Counts{Delivered: s.Counts.Delivered, DeadLettered: s.Counts.DeadLettered}
	}
	got := counts()
	for deadline := time.Now().Add(10 * time.Second); got != want && time.Now().Before(deadline); got = counts() {
		time.Sleep(50 * time.Millisecond)
	}
	// And they stay so once both deliverers' reports are read.
	for deadline := time.Now().Add(time.Second); got == want && time.Now().Before(deadline); got = counts() {
		time.Sleep(50 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("status counts %+v, want %+v (%d deliveries of %d distinct events)", got, want, len(rcv.delivered()), rcv.distinctDelivered())
	}
	if c := e.committedCounts(name); c != want {
		t.Fatalf("committed counts %+v, want %+v", c, want)
	}
	t.Logf("%d deliveries and %d dead letters of %d events: counted %d delivered, %d dead-lettered",
		len(rcv.delivered()), 2*wantDead, len(evs), got.Delivered, got.DeadLettered)
}

// Transaction markers that come after a flow's last event (here those of an
// aborted transaction: nothing to deliver) are committed over, also by a
// transactional destination, so that a drained topic shows no lag.
func TestTrailingTransactionMarkersCommitted(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	httpName, kafkaName := flowName(), flowName()
	e.createTopics(httpName, 2)
	e.createTopics(kafkaName, 2)
	dest := "dest-" + kafkaName
	if err := e.kcfg.EnsureTopics(e.ctx, e.cl, kafka.TopicSpec{Name: dest, Partitions: 1, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	e.putFlow(httpFlow(httpName, rcv.url()))
	e.putFlow(kafkaFlow(kafkaName, dest, "envelope"))
	e.start()
	for _, name := range []string{httpName, kafkaName} {
		e.produceTxn(name, 10, events(name, 20, 4)...)
	}
	waitFor(t, 30*time.Second, "the events delivered", func() bool {
		return rcv.distinctDelivered() == 20 && len(e.readAll(dest)) == 20
	})
	for _, name := range []string{httpName, kafkaName} {
		e.writeTxn(name, 10, kgo.TryAbort, events(name+"-aborted", 10, 4)...)
	}
	for _, name := range []string{httpName, kafkaName} {
		waitFor(t, 20*time.Second, "offsets committed past the markers of "+name, func() bool { return e.groupLag(name) == 0 })
		if c := e.committedCounts(name); c != (stats.Counts{Delivered: 20}) {
			t.Errorf("%s: committed counts %+v, want 20 delivered", name, c)
		}
	}
	if n := rcv.distinctDelivered(); n != 20 {
		t.Errorf("%d events delivered, want 20 (aborted ones delivered?)", n)
	}
}
