// Command samsa-healthcheck probes an HTTP endpoint and exits 0 when it
// answers 2xx, 1 otherwise. The runtime image has no shell, curl or wget, so
// docker-compose health checks run this instead:
//
//	samsa-healthcheck http://127.0.0.1:8081/readyz
//
// Kubernetes probes the same endpoints itself and does not need it.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: samsa-healthcheck URL")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(stderr, "%s: %s %s\n", args[0], resp.Status, body)
		return 1
	}
	return 0
}
