package dev

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestDevSourcesPage checks the sources page of samsa dev: the receiver in
// the process publishes its counts to samsa.stats like a separate one, and
// the page shows them once, not added to the receiver's own metrics that
// the control service also sees.
func TestDevSourcesPage(t *testing.T) {
	c := startDev(t)
	api := "http://" + c.ControlHTTP
	if code, body := do(t, http.MethodPut, api+"/v1/sources/shop", "application/json", `{"name":"shop"}`, nil); code != 200 {
		t.Fatalf("put source: %d %s", code, body)
	}
	ingest := "http://" + c.ReceiverHTTP + "/v1/sources/shop/events"
	if code, body := do(t, http.MethodPost, ingest, "application/x-ndjson", "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n", nil); code != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", code, body)
	}
	if code, _ := do(t, http.MethodPost, ingest, "application/json", `{"n":`, nil); code != http.StatusBadRequest {
		t.Fatalf("malformed: %d", code)
	}

	type status struct {
		IngestKnown bool `json:"ingestKnown"`
		Statuses    []struct {
			Name       string            `json:"name"`
			Events     string            `json:"events"`
			Requests   string            `json:"requests"`
			Rejections map[string]string `json:"rejections"`
		} `json:"statuses"`
	}
	shop := func() (events, requests, malformed string, known bool) {
		t.Helper()
		code, body := do(t, http.MethodGet, api+"/v1/sourcestatuses", "", "", nil)
		var st status
		if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK {
			t.Fatalf("sourcestatuses: %d %s %v", code, body, err)
		}
		for _, s := range st.Statuses {
			if s.Name == "shop" {
				return s.Events, s.Requests, s.Rejections["malformed"], st.IngestKnown
			}
		}
		t.Fatalf("shop not listed: %s", body)
		return
	}
	// Watch the page over a few of the receiver's publishing intervals
	// (1s): from the metrics first, then from the reports, always the
	// same numbers.
	seen := false
	for end := time.Now().Add(3500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		events, requests, malformed, known := shop()
		if events == "" && requests == "" {
			continue // not counted yet (numbers are omitted when zero)
		}
		if !known || events != "3" || requests != "2" || malformed != "1" {
			t.Fatalf("shop: %s events, %s requests, %s malformed (known %v); want 3, 2, 1", events, requests, malformed, known)
		}
		seen = true
	}
	if !seen {
		t.Fatal("the sources page never showed the source's numbers")
	}
}
