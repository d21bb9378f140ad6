package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func init() {
	register(&command{name: "apply", summary: "create or update sources and flows from YAML files", run: runApply})
}

// fileList is a repeatable -f.
type fileList []string

func (l *fileList) String() string     { return strings.Join(*l, ",") }
func (l *fileList) Set(v string) error { *l = append(*l, v); return nil }

// runApply puts every resource of the files: sources first, then flows, so
// a flow may come before its source in a file. A put is create-or-replace
// and the server reports whether it changed anything, so applying the same
// files again is harmless and says "unchanged".
func runApply(ctx context.Context, e *env, args []string) error {
	var f apiFlags
	var files fileList
	fs := newFlagSet("apply", "-f FILE [-f FILE...]", e)
	fs.Var(&files, "f", "YAML or JSON file of sources and flows (kind: Source|Flow); a directory applies its *.yaml, *.yml and *.json files; - reads stdin")
	f.register(fs, e, false)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || len(files) == 0 {
		return usagef("usage: samsa apply -f FILE [-f FILE...]")
	}
	var all []*resource
	for _, name := range files {
		rs, err := readResources(e, name)
		if err != nil {
			return err
		}
		all = append(all, rs...)
	}
	if len(all) == 0 {
		return fmt.Errorf("no resources in %s", strings.Join(files, ", "))
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].kind == kindSource && all[j].kind == kindFlow })

	c := f.client()
	var firstErr error
	for _, r := range all {
		result, err := applyOne(ctx, c, r)
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", r.ref(), err)
			if ae, ok := err.(*apiError); ok {
				for _, fv := range ae.fields {
					// The message names the first field already.
					if line := fv.GetField() + ": " + fv.GetDescription(); !strings.Contains(ae.msg, line) {
						fmt.Fprintf(e.stderr, "  %s\n", line)
					}
				}
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		fmt.Fprintf(e.stdout, "%s %s\n", r.ref(), result)
	}
	if firstErr != nil {
		return &applyError{err: firstErr}
	}
	return nil
}

// applyError reports that some resources failed (each one was reported
// already); its exit code is the first failure's.
type applyError struct{ err error }

func (e *applyError) Error() string { return "some resources were not applied" }
func (e *applyError) Unwrap() error { return e.err }

func applyOne(ctx context.Context, c *client, r *resource) (string, error) {
	if r.source != nil {
		var resp samsav1.PutSourceResponse
		err := c.do(ctx, "PUT", path("/v1/sources/%s", r.source.GetName()), r.source, &resp)
		return resp.GetResult(), err
	}
	var resp samsav1.PutFlowResponse
	err := c.do(ctx, "PUT", path("/v1/flows/%s", r.flow.GetName()), r.flow, &resp)
	return resp.GetResult(), err
}

// readResources reads a file, stdin ("-") or the resource files of a directory.
func readResources(e *env, name string) ([]*resource, error) {
	if name == "-" {
		return decodeResources(e.stdin, "stdin")
	}
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return readFile(name)
	}
	entries, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	var out []*resource
	for _, de := range entries {
		switch filepath.Ext(de.Name()) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		if de.IsDir() {
			continue
		}
		rs, err := readFile(filepath.Join(name, de.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func readFile(name string) ([]*resource, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return decodeResources(io.LimitReader(fh, 64<<20), name)
}
