package dlq

import (
	"strings"
	"testing"
	"time"
)

func TestHeadersRoundTrip(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 123000000, time.UTC)
	f := Failure{
		Flow: "orders", FlowVersion: 7, Stage: "deliver", Err: "HTTP 400", Time: now,
		Attempts: 3, Status: "400", Response: `{"error":"bad"}`, FirstAttempt: now.Add(-time.Minute),
		SourceTopic: "samsa.src.shop", SourcePartition: 2, SourceOffset: 99,
	}
	got := Parse(f.Headers())
	if got != f {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", MaxResponseExcerpt)
	h := Failure{Response: long, Time: time.Now()}.Headers()
	for _, x := range h {
		if x.Key == HeaderResponse {
			if len(x.Value) > MaxResponseExcerpt+len("…") || !strings.HasSuffix(string(x.Value), "…") {
				t.Fatalf("response excerpt not truncated: %d bytes", len(x.Value))
			}
			if !strings.HasPrefix(string(x.Value), "éé") || strings.ContainsRune(string(x.Value), '\uFFFD') {
				t.Fatal("excerpt cut inside a rune")
			}
			return
		}
	}
	t.Fatal("no response header")
}
