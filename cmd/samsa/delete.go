package main

import (
	"context"
	"fmt"
	"strings"
)

func init() {
	register(&command{name: "delete", summary: "delete a source or a flow (its topics and their data are kept)", run: runDelete})
}

func runDelete(ctx context.Context, e *env, args []string) error {
	var f apiFlags
	var version int64
	fs := newFlagSet("delete", "source|flow NAME [--version N]", e)
	f.register(fs, e, false)
	fs.Int64Var(&version, "version", 0, "delete only if the resource is still at this version (0: whatever is there)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 2, 2, "delete source|flow NAME"); err != nil {
		return err
	}
	kind, ok := kindArg(pos[0])
	if !ok {
		return usagef("delete %q: want source or flow", pos[0])
	}
	if err := checkName(strings.ToLower(kind), pos[1]); err != nil {
		return err
	}
	p := path("/v1/sources/%s", pos[1])
	if kind == kindFlow {
		p = path("/v1/flows/%s", pos[1])
	}
	if version != 0 {
		p += fmt.Sprintf("?version=%d", version)
	}
	if err := f.client().do(ctx, "DELETE", p, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s/%s deleted\n", strings.ToLower(kind), pos[1])
	return nil
}
