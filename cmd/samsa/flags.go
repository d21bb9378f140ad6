package main

import (
	"flag"
	"fmt"

	"github.com/samsa-dev/samsa/pkg/kafka"
)

// apiFlags are the flags of every command that calls the control API.
type apiFlags struct {
	server string
	token  string
	output string
}

const defaultServer = "http://127.0.0.1:8080"

// register binds the flags; their defaults come from SAMSA_SERVER and
// SAMSA_TOKEN.
func (f *apiFlags) register(fs *flag.FlagSet, e *env, withOutput bool) {
	server := e.getenv("SAMSA_SERVER")
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&f.server, "server", server, "control API base URL (SAMSA_SERVER)")
	fs.StringVar(&f.token, "token", e.getenv("SAMSA_TOKEN"), "control API bearer token (SAMSA_TOKEN)")
	if withOutput {
		fs.StringVar(&f.output, "o", "table", "output format: table, json or yaml")
	}
}

func (f *apiFlags) client() *client { return newClient(f.server, f.token) }

func (f *apiFlags) checkOutput() error {
	switch f.output {
	case "", "table", "json", "yaml":
		return nil
	}
	return usagef("-o %q: want table, json or yaml", f.output)
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, args string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("samsa "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: samsa %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags anywhere among the arguments (samsa get flows -o
// json) and returns the positional ones. Everything after "--" is
// positional.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		rest := fs.Args()
		// flag stops at "--" and drops it: whatever follows is positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// checkName refuses a source or flow name that no resource can have, so
// that a typo is named as such instead of answered with a puzzling 404 (a
// name with a slash or "..", once in a URL, reaches another route).
func checkName(kind, name string) error {
	if err := kafka.ValidateName(name); err != nil {
		return usagef("%s %v", kind, err)
	}
	return nil
}

// wantArgs checks the number of positional arguments.
func wantArgs(pos []string, min, max int, usage string) error {
	if len(pos) < min || len(pos) > max {
		return usagef("usage: samsa %s", usage)
	}
	return nil
}
