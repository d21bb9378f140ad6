package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func init() {
	register(&command{name: "status", summary: "show what a flow is doing: state, counts, lag, last error", run: runStatus})
}

func runStatus(ctx context.Context, e *env, args []string) error {
	var f apiFlags
	fs := newFlagSet("status", "FLOW [-o table|json|yaml]", e)
	f.register(fs, e, true)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "status FLOW"); err != nil {
		return err
	}
	if err := checkName("flow", pos[0]); err != nil {
		return err
	}
	if err := f.checkOutput(); err != nil {
		return err
	}
	var st samsav1.FlowStatus
	if err := f.client().do(ctx, "GET", path("/v1/flows/%s/status", pos[0]), nil, &st); err != nil {
		return err
	}
	return printOne(e.stdout, f.output, "", &st, func(w io.Writer) { statusTable(w, &st) })
}

func statusTable(w io.Writer, st *samsav1.FlowStatus) {
	tw := w.(*tabwriter.Writer)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, args...)...)
	}
	row("Flow", "%s", st.GetName())
	state := st.GetState()
	if st.GetReason() != "" {
		state += " (" + st.GetReason() + ")"
	}
	row("State", "%s", state)
	c := st.GetCounts()
	row("Received", "%d", c.GetReceived())
	row("Filtered out", "%d", c.GetFilteredOut())
	row("Delivered", "%d", c.GetDelivered())
	row("Dead-lettered", "%d", c.GetDeadLettered())
	row("In flight", "%d", c.GetInFlight())
	r := st.GetRates()
	row("Rates /s", "received %.1f, delivered %.1f, dead-lettered %.1f", r.GetReceived(), r.GetDelivered(), r.GetDeadLettered())
	row("Lag", "transform %d, delivery %d", st.GetTransformLag(), st.GetDeliveryLag())
	if st.GetLatencyP50Ms() > 0 {
		row("Latency", "p50 %.0fms, p95 %.0fms, p99 %.0fms", st.GetLatencyP50Ms(), st.GetLatencyP95Ms(), st.GetLatencyP99Ms())
	}
	if b := st.GetBreaker(); b != "" {
		row("Breaker", "%s", b)
	}
	row("DLQ depth", "%d", st.GetDlqDepth())
	if le := st.GetLastError(); le != nil {
		row("Last error", "%s: %s (event %s, %s)", le.GetStage(), le.GetMessage(), le.GetEventId(), le.GetTime().AsTime().Format(time.RFC3339))
	}
	if nm := st.GetNextMaintenance(); nm != nil {
		row("Next maintenance", "%s", nm.AsTime().Format(time.RFC3339))
	}
}
