package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Control is a client of the control REST API.
type Control struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// Do sends a request with a JSON body (nil for none) and decodes a 2xx
// answer into out (nil to discard it).
func (c *Control) Do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// PutSource creates or replaces a source (the JSON resource).
func (c *Control) PutSource(name string, src map[string]any) error {
	return c.Do(http.MethodPut, "/v1/sources/"+name, src, nil)
}

// PutFlow creates or replaces a flow (the JSON resource).
func (c *Control) PutFlow(name string, f map[string]any) error {
	return c.Do(http.MethodPut, "/v1/flows/"+name, f, nil)
}

// Pause pauses a flow.
func (c *Control) Pause(name string) error {
	return c.Do(http.MethodPost, "/v1/flows/"+name+":pause", map[string]any{}, nil)
}

// Resume resumes a flow.
func (c *Control) Resume(name string) error {
	return c.Do(http.MethodPost, "/v1/flows/"+name+":resume", map[string]any{}, nil)
}

// Status reads a flow's status.
func (c *Control) Status(name string) (*Status, error) {
	st := new(Status)
	if err := c.Do(http.MethodGet, "/v1/flows/"+name+"/status", nil, st); err != nil {
		return nil, err
	}
	return st, nil
}

// Int is a protojson int64: a JSON string or number.
type Int int64

// UnmarshalJSON accepts "12" and 12.
func (i *Int) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return err
	}
	*i = Int(n)
	return nil
}

// Status is the part of GET /v1/flows/{name}/status the tests look at.
type Status struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	Counts struct {
		Received     Int `json:"received"`
		FilteredOut  Int `json:"filteredOut"`
		Transformed  Int `json:"transformed"`
		Delivered    Int `json:"delivered"`
		DeadLettered Int `json:"deadLettered"`
		InFlight     Int `json:"inFlight"`
	} `json:"counts"`
	TransformLag Int    `json:"transformLag"`
	DeliveryLag  Int    `json:"deliveryLag"`
	Breaker      string `json:"breaker"`
	DLQDepth     Int    `json:"dlqDepth"`
	LastError    *struct {
		Stage   string `json:"stage"`
		Message string `json:"message"`
	} `json:"lastError"`
}

// AddsUp reports whether received = filtered out + delivered + dead-lettered
// + in flight.
func (s *Status) AddsUp() bool {
	c := s.Counts
	return c.Received == c.FilteredOut+c.Delivered+c.DeadLettered+c.InFlight
}

// String is a one-line summary.
func (s *Status) String() string {
	c := s.Counts
	return fmt.Sprintf("state=%s received=%d filtered=%d transformed=%d delivered=%d dlq=%d in_flight=%d transform_lag=%d delivery_lag=%d breaker=%s reason=%q",
		s.State, c.Received, c.FilteredOut, c.Transformed, c.Delivered, c.DeadLettered, c.InFlight, s.TransformLag, s.DeliveryLag, s.Breaker, s.Reason)
}
