package main

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

const sampleFile = `# a source and a flow
kind: Source
name: orders
auth:
  apiKeys:
    - name: shop
      key: sk_test_0123456789abcdef
---
kind: Flow
name: to-crm
source: orders
filter: event.type == "order.created"
transform: |
  def transform(event):
      return {"id": event.data["id"]}
destination:
  http:
    url: https://crm.example.com/hooks
    secretHeaders:
      Authorization: Bearer abc
delivery:
  maxInFlight: 8
  retry: {initialBackoff: 1s, maxBackoff: 1m, multiplier: 1.5}
  maintenanceWindows:
    - {cron: "0 2 * * SUN", duration: 2h, timeZone: Europe/Berlin}
version: 12
---
`

func TestDecodeResources(t *testing.T) {
	rs, err := decodeResources(strings.NewReader(sampleFile), "sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].ref() != "source/orders" || rs[1].ref() != "flow/to-crm" {
		t.Fatalf("resources: %v", rs)
	}
	f := rs[1].flow
	want := &samsav1.Flow{
		Name: "to-crm", Source: "orders", Filter: `event.type == "order.created"`,
		Transform: "def transform(event):\n    return {\"id\": event.data[\"id\"]}\n",
		Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{
			Url: "https://crm.example.com/hooks", SecretHeaders: map[string]string{"Authorization": "Bearer abc"},
		}}},
		Delivery: &samsav1.Delivery{
			MaxInFlight:        8,
			Retry:              &samsav1.Retry{InitialBackoff: "1s", MaxBackoff: "1m", Multiplier: 1.5},
			MaintenanceWindows: []*samsav1.MaintenanceWindow{{Cron: "0 2 * * SUN", Duration: "2h", TimeZone: "Europe/Berlin"}},
		},
		Version: 12,
	}
	if !proto.Equal(f, want) {
		t.Fatalf("flow:\n%v\nwant\n%v", f, want)
	}
	// JSON is YAML too.
	rs, err = decodeResources(strings.NewReader(`{"kind": "Source", "name": "s", "partitions": 3}`), "s.json")
	if err != nil || rs[0].source.GetPartitions() != 3 {
		t.Fatalf("json: %v %v", rs, err)
	}
}

func TestDecodeResourcesErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"name: x\n", "f.yaml, document 1: kind is missing: want kind: Source or kind: Flow"},
		{"kind: Pipeline\nname: x\n", `f.yaml, document 1: kind "Pipeline": want Source or Flow`},
		{"kind: Flow\nname: x\ntranform: y\n", `f.yaml, document 1 (Flow): unknown field "tranform"`}, // protojson's position is in the JSON made from the YAML: left out
		{"kind: Flow\nname: x\ntranform: y\n", `unknown field "tranform"`},
		{"kind: Source\ndescription: no name\n", "f.yaml, document 1 (Source): name is missing"},
		{"- a\n- b\n", "f.yaml, document 1: want a mapping with kind: Source or kind: Flow"},
		{"kind: Source\nname: x\n---\nkind: Source\nname: [\n", "f.yaml, document 2: yaml: line"},
		{"kind: Source\nname: x\npartitions: many\n", "invalid value for int32 field partitions"},
		{"kind: Source\nname: x\nrateLimit:\n  1: 2\n", "f.yaml, document 1: rateLimit: mapping keys must be strings"},
	}
	for _, c := range cases {
		_, err := decodeResources(strings.NewReader(c.in), "f.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}

// TestYAMLRoundTrip: what get -o yaml prints, apply reads back unchanged.
func TestYAMLRoundTrip(t *testing.T) {
	rs, err := decodeResources(strings.NewReader(sampleFile), "sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := encodeYAML(&buf, kindSource, rs[0].source); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("---\n")
	if err := encodeYAML(&buf, kindFlow, rs[1].flow); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "transform: |") {
		t.Errorf("the transform is not a literal block:\n%s", buf.String())
	}
	back, err := decodeResources(&buf, "out.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !proto.Equal(back[0].source, rs[0].source) || !proto.Equal(back[1].flow, rs[1].flow) {
		t.Fatalf("round trip changed the resources:\n%v\n%v", back[1].flow, rs[1].flow)
	}
}

// FuzzDecodeResources: decoding never panics, and whatever decodes
// survives a YAML round trip unchanged.
func FuzzDecodeResources(f *testing.F) {
	f.Add(sampleFile)
	f.Add(`{"kind": "Flow", "name": "f", "destination": {"kafka": {"topic": "t", "brokers": ["a:1"]}}}`)
	f.Add("kind: Source\nname: s\nauth: {signature: {preset: github, secret: x}}\n---\n---\n")
	f.Add("kind: Flow\nname: f\ncreateTime: 2024-01-02T03:04:05Z\nversion: '7'\n")
	f.Add("a: &a [*a, *a]\n")
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := decodeResources(strings.NewReader(in), "fuzz.yaml")
		if err != nil {
			return
		}
		for _, r := range rs {
			var m proto.Message = r.source
			if r.flow != nil {
				m = r.flow
			}
			var buf bytes.Buffer
			if err := encodeYAML(&buf, r.kind, m); err != nil {
				t.Fatalf("encode %v: %v", m, err)
			}
			back, err := decodeResources(&buf, "again.yaml")
			if err != nil {
				t.Fatalf("decode of encoded %v: %v\n%s", m, err, buf.String())
			}
			var got proto.Message = back[0].source
			if back[0].flow != nil {
				got = back[0].flow
			}
			if len(back) != 1 || !proto.Equal(got, m) {
				t.Fatalf("round trip:\n%v\n%v\n%s", got, m, buf.String())
			}
		}
	})
}
