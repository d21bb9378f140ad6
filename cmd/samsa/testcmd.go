package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func init() {
	register(&command{name: "test", summary: "dry-run a flow's filter and transform on sample events", run: runTest})
}

// runTest runs the filter and transform of a stored flow (samsa test FLOW)
// or of a flow in a file (-f), without deploying anything, on sample events
// read as NDJSON: one TestEvent per line, e.g.
// {"type": "order.created", "data": {"id": "o1", "amount": 12}}.
func runTest(ctx context.Context, e *env, args []string) error {
	var f apiFlags
	var file, events, name string
	fs := newFlagSet("test", "[FLOW] [-f flow.yaml [--flow NAME]] -e events.ndjson", e)
	f.register(fs, e, true)
	fs.StringVar(&file, "f", "", "resource file holding the flow to test (instead of a stored flow)")
	fs.StringVar(&name, "flow", "", "with -f: the flow of the file to test (default: its only flow)")
	fs.StringVar(&events, "e", "-", "NDJSON file of sample events, one per line (- reads stdin)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := f.checkOutput(); err != nil {
		return err
	}
	req := &samsav1.TestRequest{}
	switch {
	case len(pos) == 1 && file == "":
		if err := checkName("flow", pos[0]); err != nil {
			return err
		}
		req.Flow = pos[0]
	case len(pos) == 0 && file != "":
		fl, err := flowFromFile(e, file, name)
		if err != nil {
			return err
		}
		req.Filter, req.Transform = fl.GetFilter(), fl.GetTransform()
	default:
		return usagef("usage: samsa test FLOW -e events.ndjson, or samsa test -f flow.yaml -e events.ndjson")
	}
	if req.Events, err = readTestEvents(e, events); err != nil {
		return err
	}
	var resp samsav1.TestResponse
	if err := f.client().do(ctx, "POST", "/v1/transforms:test", req, &resp); err != nil {
		return err
	}
	switch f.output {
	case "json":
		return encodeJSON(e.stdout, &resp)
	case "yaml":
		return encodeYAML(e.stdout, "", &resp)
	}
	for i, r := range resp.GetResults() {
		switch {
		case r.GetError() != "":
			fmt.Fprintf(e.stdout, "event %d: error: %s\n", i+1, r.GetError())
		case !r.GetKept():
			fmt.Fprintf(e.stdout, "event %d: filtered out\n", i+1)
		case len(r.GetOutputs()) == 0:
			fmt.Fprintf(e.stdout, "event %d: dropped by the transform\n", i+1)
		}
		for _, o := range r.GetOutputs() {
			b, err := jsonOut.Marshal(o.GetData())
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "event %d: %s\n", i+1, buf.Bytes())
		}
	}
	return nil
}

func flowFromFile(e *env, file, name string) (*samsav1.Flow, error) {
	rs, err := readResources(e, file)
	if err != nil {
		return nil, err
	}
	var found []*samsav1.Flow
	for _, r := range rs {
		if r.flow != nil && (name == "" || r.flow.GetName() == name) {
			found = append(found, r.flow)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && name != "":
		return nil, fmt.Errorf("%s holds no flow %q", file, name)
	case len(found) == 0:
		return nil, fmt.Errorf("%s holds no flow", file)
	}
	return nil, usagef("%s holds %d flows: choose one with --flow", file, len(found))
}

func readTestEvents(e *env, name string) ([]*samsav1.TestEvent, error) {
	var r io.Reader = e.stdin
	if name != "-" {
		fh, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	var out []*samsav1.TestEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ev := &samsav1.TestEvent{}
		if err := strictJSON.Unmarshal([]byte(line), ev); err != nil {
			where := name
			if where == "-" {
				where = "stdin"
			}
			return nil, fmt.Errorf("%s, line %d: %s", where, n, protoMessage(err))
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, usagef("no sample events in %s", name)
	}
	return out, nil
}
