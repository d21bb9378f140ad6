package config

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseEnv(t *testing.T) {
	t.Setenv("SAMSA_KAFKA_BROKERS", "a:1,b:2")
	t.Setenv("SAMSA_DRAIN_TIMEOUT", "3s")
	t.Setenv("SAMSA_LOG_LEVEL", "debug")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var brokers StringList
	fs.Var(&brokers, "kafka-brokers", "")
	drain := fs.Duration("drain-timeout", time.Second, "")
	level := fs.String("log-level", "info", "")
	if err := Parse(fs, []string{"--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(brokers, "|") != "a:1|b:2" || *drain != 3*time.Second || *level != "warn" {
		t.Fatalf("got brokers=%v drain=%v level=%v", brokers, *drain, *level)
	}
}

func TestParseEnvError(t *testing.T) {
	t.Setenv("SAMSA_DRAIN_TIMEOUT", "soon")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Duration("drain-timeout", time.Second, "")
	err := Parse(fs, nil)
	if err == nil || !strings.Contains(err.Error(), "SAMSA_DRAIN_TIMEOUT") {
		t.Fatalf("err = %v, want one naming SAMSA_DRAIN_TIMEOUT", err)
	}
}
