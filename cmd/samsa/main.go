// Command samsa is Samsa's command-line tool: it manages sources and flows
// through the control API (apply, get, delete, pause, resume, status, dlq,
// test) and runs the platform for development (dev, send, sink).
//
// Exit codes, for scripts:
//
//	0  success
//	1  error (the server refused the request or could not be reached)
//	2  usage error (unknown command or flag, missing argument)
//	3  not found
//	4  conflict (a stale version: read the resource again and retry)
//	5  authentication or permission denied
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/samsa-dev/samsa/cmd/samsa/send"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitNotFound = 3
	exitConflict = 4
	exitAuth     = 5
)

// command is a subcommand. Each lives in a file of its own and adds itself
// to the table with register, from an init function.
type command struct {
	name    string
	summary string
	// run gets the arguments after the command's name.
	run func(ctx context.Context, env *env, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("samsa: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// env is what a command runs with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "samsa: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return exitUsage
	}
	err := c.run(ctx, e, args[1:])
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(e.stderr, "samsa %s: %v\n", c.name, err)
	return exitCode(err)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: samsa COMMAND [ARGS] [FLAGS]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun samsa COMMAND -h for its flags. Commands that call the control API take")
	fmt.Fprintln(w, "--server (SAMSA_SERVER, default http://127.0.0.1:8080) and --token (SAMSA_TOKEN).")
	fmt.Fprintln(w, "\nExit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 conflict, 5 auth.")
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ue *usageError
	var sue *send.UsageError
	var ae *apiError
	switch {
	case errors.As(err, &ue), errors.As(err, &sue):
		return exitUsage
	case errors.As(err, &ae):
		switch ae.status {
		case 404:
			return exitNotFound
		case 409:
			return exitConflict
		case 401, 403:
			return exitAuth
		}
	}
	return exitError
}
