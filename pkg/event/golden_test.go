package event

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// update rewrites the golden files in testdata instead of comparing with
// them: go test ./pkg/event -run Golden -update. Review the diff before
// committing it: a changed golden file means envelopes already in Kafka
// are no longer what this code writes, and a changed fingerprint means
// this code can no longer read them.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// samplePayload is a representative JSON payload of about 300 bytes, used
// by the golden files and the benchmarks.
const samplePayload = `{"order_id":"ord_8f14e45fceea167a","customer":{"id":"cus_4b227777d4dd1fc6","email":"ada@example.com","tier":"gold"},"items":[{"sku":"SKU-1042","qty":2,"price":19.99},{"sku":"SKU-2210","qty":1,"price":149.5}],"currency":"EUR","total":189.48,"placed_at":"2024-05-01T12:34:56.789Z","coupon":null}`

// goldenEvents are encoded to testdata/<name>.bin.
var goldenEvents = []struct {
	name  string
	event *Event
}{
	{
		// Only what the receiver always sets; every optional field null,
		// no attributes.
		name: "minimal",
		event: &Event{
			ID:          "evt_01HX3Q8J4K5M6N7P8Q9R0S1T2V",
			Source:      "orders",
			Time:        time.Date(2024, 5, 1, 12, 34, 56, 789012000, time.UTC),
			ContentType: "application/json",
			Data:        []byte(`{"ok":true}`),
		},
	},
	{
		// Every field set, as a webhook with trace context arrives.
		name: "full",
		event: &Event{
			ID:          "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
			Source:      "shop",
			Type:        "order.created",
			Subject:     "orders/ord_8f14e45fceea167a",
			Time:        time.Date(2024, 5, 1, 12, 34, 56, 789012000, time.UTC),
			Key:         "cus_4b227777d4dd1fc6",
			ContentType: "application/json",
			Data:        []byte(samplePayload),
			Attributes: map[string]string{
				"specversion": "1.0",
				"dataschema":  "https://schemas.example.com/order/v3",
				"partition":   "eu-west",
			},
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			TraceState:  "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
		},
	},
	{
		// Non-ASCII everywhere, binary data, an empty attribute value, and
		// a time before the epoch (a negative long).
		name: "unicode",
		event: &Event{
			ID:          "ünïcødé-🙂-0001",
			Source:      "webhooks",
			Type:        "ストア.注文.作成",
			Subject:     "Ελληνικά/Ωμέγα",
			Time:        time.Date(1969, 7, 20, 20, 17, 40, 123456000, time.UTC),
			Key:         "клиент-42",
			ContentType: "application/octet-stream",
			Data:        []byte{0x00, 0x01, 0x7f, 0x80, 0xc3, 0x01, 0xfe, 0xff, 0x00},
			Attributes: map[string]string{
				"emoji": "🎉",
				"empty": "",
			},
		},
	},
}

// golden compares got with testdata/name, or writes it there with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (if the change is intended, run go test -run Golden -update):\n got % x\nwant % x",
			path, got, want)
	}
}

// TestGoldenSchema pins the Parsing Canonical Form and the fingerprint: a
// change to envelope.avsc that changes either changes the wire format, and
// must be deliberate. Docs, defaults and whitespace do not change them.
func TestGoldenSchema(t *testing.T) {
	golden(t, "envelope.canonical.json", []byte(canonicalSchema+"\n"))
	golden(t, "fingerprint.txt", fmt.Appendf(nil, "%#016x\n", Fingerprint()))

	if got, want := header[:2], []byte{0xC3, 0x01}; !bytes.Equal(got, want) {
		t.Errorf("marker % x, want % x", got, want)
	}
	if got, want := fmt.Sprintf("% x", header[2:]), fmt.Sprintf("% x", []byte{
		byte(fingerprint), byte(fingerprint >> 8), byte(fingerprint >> 16), byte(fingerprint >> 24),
		byte(fingerprint >> 32), byte(fingerprint >> 40), byte(fingerprint >> 48), byte(fingerprint >> 56),
	}); got != want {
		t.Errorf("header fingerprint % x, want little-endian %s", header[2:], want)
	}
	if !strings.HasPrefix(canonicalSchema, `{"name":"dev.samsa.Envelope","type":"record","fields":[`) {
		t.Errorf("canonical form does not start with the record's full name: %s", canonicalSchema)
	}
}

// TestGoldenEvents pins the encoding of representative events, and checks
// that the golden files decode, with this package and with goavro, to the
// events they were made from.
func TestGoldenEvents(t *testing.T) {
	for _, g := range goldenEvents {
		t.Run(g.name, func(t *testing.T) {
			b, err := Encode(g.event)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, g.name+".bin", b)

			b, err = os.ReadFile(filepath.Join("testdata", g.name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(golden file): %v", err)
			}
			checkEqual(t, got, g.event)

			native, rest, err := plainCodec.NativeFromSingle(b)
			if err != nil {
				t.Fatalf("goavro NativeFromSingle(golden file): %v", err)
			}
			if len(rest) != 0 {
				t.Fatalf("goavro left %d bytes", len(rest))
			}
			checkEqual(t, fromNative(t, native), g.event)
		})
	}
}
