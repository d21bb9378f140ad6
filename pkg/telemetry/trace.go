package telemetry

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/event"
)

// TraceConfig configures OpenTelemetry tracing. Tracing is off unless an
// OTLP endpoint is given; trace context is carried from ingest to delivery
// either way, so a trace started by a producer continues at the destination.
type TraceConfig struct {
	// OTLPEndpoint is the host:port of an OTLP/gRPC collector. Empty: off.
	OTLPEndpoint string
	// OTLPInsecure talks to the collector without TLS.
	OTLPInsecure bool
	// SampleRatio of new traces to record (traces started upstream follow
	// the upstream decision). Default 1.
	SampleRatio float64
}

// RegisterFlags binds --otlp-endpoint, --otlp-insecure and --trace-sample-ratio.
func (c *TraceConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", "", "OTLP/gRPC collector (host:port) to send traces to (default: tracing off)")
	fs.BoolVar(&c.OTLPInsecure, "otlp-insecure", false, "connect to the OTLP collector without TLS")
	fs.Float64Var(&c.SampleRatio, "trace-sample-ratio", 1, "share of new traces recorded, 0 to 1")
}

// SetupTracing installs the global tracer provider and the W3C trace
// context propagator for service. The returned function flushes and stops
// the exporter; call it on shutdown.
func SetupTracing(ctx context.Context, c TraceConfig, service string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagator)
	if c.OTLPEndpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return nil, fmt.Errorf("--trace-sample-ratio %v: want 0 to 1", c.SampleRatio)
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.OTLPEndpoint)}
	if c.OTLPInsecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("samsa-"+service))),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// propagator is W3C trace context and baggage. Samsa's own propagation uses
// it directly, so trace context flows from ingest to delivery even when no
// global propagator was installed (tracing off, tests, samsa dev).
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Tracer returns the tracer of a Samsa component from the global provider.
func Tracer(component string) trace.Tracer {
	return otel.Tracer("github.com/samsa-dev/samsa/" + component)
}

// eventCarrier reads and writes the envelope's trace context fields.
type eventCarrier struct{ ev *event.Event }

func (c eventCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.ev.TraceParent
	case "tracestate":
		return c.ev.TraceState
	}
	return ""
}

func (c eventCarrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.ev.TraceParent = value
	case "tracestate":
		c.ev.TraceState = value
	}
}

func (c eventCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// EventContext returns ctx carrying the trace context stored in ev.
func EventContext(ctx context.Context, ev *event.Event) context.Context {
	if ev.TraceParent == "" {
		return ctx
	}
	return propagator.Extract(ctx, eventCarrier{ev})
}

// InjectEvent stores the trace context of ctx in ev, so that the next stage
// continues the trace.
func InjectEvent(ctx context.Context, ev *event.Event) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, eventCarrier{ev})
}

// RecordCarrier adapts Kafka record headers to OpenTelemetry propagation,
// so trace context also travels in the traceparent header of every record
// (where Kafka tooling expects it).
type RecordCarrier struct{ R *kgo.Record }

// Get returns the value of the first header named key.
func (c RecordCarrier) Get(key string) string {
	for _, h := range c.R.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces or adds the header key.
func (c RecordCarrier) Set(key, value string) {
	for i, h := range c.R.Headers {
		if h.Key == key {
			c.R.Headers[i].Value = []byte(value)
			return
		}
	}
	c.R.Headers = append(c.R.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// Keys lists the header names.
func (c RecordCarrier) Keys() []string {
	out := make([]string, len(c.R.Headers))
	for i, h := range c.R.Headers {
		out[i] = h.Key
	}
	return out
}

// InjectRecord writes the trace context of ctx into r's headers.
func InjectRecord(ctx context.Context, r *kgo.Record) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, RecordCarrier{r})
}

// TraceField is the zap field of the trace id of ctx (empty when none), for
// log lines about one event.
func TraceField(ctx context.Context) zap.Field {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return zap.Skip()
	}
	return zap.String("trace_id", sc.TraceID().String())
}
