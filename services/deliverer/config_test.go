package main

import (
	"flag"
	"testing"

	"github.com/samsa-dev/samsa/pkg/config"
)

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want int64
		bad  bool
	}{
		{name: "default: twice the buffer budget", want: 128 * mib},
		{name: "follows the budget", args: []string{"--max-buffered-bytes", "256000000"}, want: 512000000},
		{name: "from the environment", env: map[string]string{"SAMSA_MEMORY_LIMIT": "200000000"}, want: 200000000},
		{name: "explicit", args: []string{"--memory-limit", "110000000"}, want: 110000000},
		{name: "off", args: []string{"--memory-limit", "-1"}, want: 0},
		{name: "too low for the budget", args: []string{"--memory-limit", "90000000"}, bad: true},
		{name: "budget of 0 is the default", args: []string{"--max-buffered-bytes", "0"}, want: 128 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var cfg Config
			fs := flag.NewFlagSet("deliverer", flag.ContinueOnError)
			cfg.register(fs)
			if err := config.Parse(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := cfg.memoryLimit()
			if tc.bad {
				if err == nil {
					t.Fatalf("limit %d accepted", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("memoryLimit() = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
