package telemetry

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/samsa-dev/samsa/pkg/event"
)

func TestTraceContextThroughEnvelopeAndHeaders(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("test")

	ctx, ingest := tr.Start(context.Background(), "ingest")
	ev := &event.Event{ID: "e1"}
	InjectEvent(ctx, ev)
	if ev.TraceParent == "" {
		t.Fatal("no traceparent injected into the envelope")
	}
	ingest.End()

	// The next stage, from the envelope alone.
	ctx2, transform := tr.Start(EventContext(context.Background(), ev), "transform")
	rec := &kgo.Record{Headers: []kgo.RecordHeader{{Key: "other", Value: []byte("x")}}}
	InjectRecord(ctx2, rec)
	transform.End()
	if got := (RecordCarrier{rec}).Get("traceparent"); got == "" {
		t.Fatal("no traceparent header on the record")
	}
	// Set replaces rather than duplicates.
	InjectRecord(ctx2, rec)
	n := 0
	for _, h := range rec.Headers {
		if h.Key == "traceparent" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d traceparent headers, want 1", n)
	}

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	if spans[0].SpanContext.TraceID() != spans[1].SpanContext.TraceID() {
		t.Fatal("transform span is not in the ingest span's trace")
	}
	if spans[1].Parent.SpanID() != spans[0].SpanContext.SpanID() {
		t.Fatal("transform span's parent is not the ingest span")
	}
	if f := TraceField(ctx2); f.String != trace.SpanContextFromContext(ctx2).TraceID().String() {
		t.Fatalf("trace field %q", f.String)
	}
}

func TestNoTraceContextNoHeaders(t *testing.T) {
	ev := &event.Event{ID: "e1"}
	InjectEvent(context.Background(), ev)
	rec := &kgo.Record{}
	InjectRecord(context.Background(), rec)
	if ev.TraceParent != "" || len(rec.Headers) != 0 {
		t.Fatal("trace context invented without a span")
	}
	if EventContext(context.Background(), ev) != context.Background() {
		t.Fatal("context changed for an event without trace context")
	}
}
