package event

import (
	"strings"
	"testing"
)

// TestParsingCanonicalForm checks the canonical form and fingerprint against
// the test vectors the Avro project publishes for every implementation
// (share/test/data/schema-tests.txt, fingerprints as Java's signed longs),
// plus the cases the envelope depends on: logical types, nested named
// types and namespaces.
func TestParsingCanonicalForm(t *testing.T) {
	for _, tc := range []struct {
		schema, canonical string
		fingerprint       int64 // 0: not given
	}{
		{`"null"`, `"null"`, 7195948357588979594},
		{`{"type":"null"}`, `"null"`, 0},
		{`"boolean"`, `"boolean"`, -6970731678124411036},
		{`{"type":"boolean"}`, `"boolean"`, 0},
		{`"int"`, `"int"`, 8247732601305521295},
		{`{"type":"int"}`, `"int"`, 0},
		{`"long"`, `"long"`, -3434872931120570953},
		{`{"type":"long"}`, `"long"`, 0},
		{`"float"`, `"float"`, 5583340709985441680},
		{`{"type":"float"}`, `"float"`, 0},
		{`"double"`, `"double"`, -8181574048448539266},
		{`{"type":"double"}`, `"double"`, 0},
		{`"bytes"`, `"bytes"`, 5746618253357095269},
		{`{"type":"bytes"}`, `"bytes"`, 0},
		{`"string"`, `"string"`, -8142146995180207161},
		{`{"type":"string"}`, `"string"`, 0},
		{`[  ]`, `[]`, -1241056759729112623},
		{`[ "int"  ]`, `["int"]`, -5232228896498058493},
		{`[ "int" , {"type":"boolean"} ]`, `["int","boolean"]`, 5392556393470105090},
		{`{"fields":[], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
		{`{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}`, `{"name":"x.y.foo","type":"record","fields":[]}`, 5916914534497305771},
		{`{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}`, `{"name":"a.b.foo","type":"record","fields":[]}`, -4616218487480524110},
		{`{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
		{`{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
		{`{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}`, 7843277075252814651},
		{
			`{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
			            {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
			  "type":"record", "name":"foo"}`,
			`{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}`,
			-4860222112080293046,
		},
		{`{"type":"enum", "name":"foo", "symbols":["A1"]}`, `{"name":"foo","type":"enum","symbols":["A1"]}`, -6342190197741309591},
		{`{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}`, `{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}`, -4448647247586288245},
		{`{"name":"foo","type":"fixed","size":15}`, `{"name":"foo","type":"fixed","size":15}`, 1756455273707447556},
		{`{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}`, `{"name":"x.y.z.foo","type":"fixed","size":32}`, -3064184465700546786},
		{`{ "items":{"type":"null"}, "type":"array"}`, `{"type":"array","items":"null"}`, -589620603366471059},
		{`{ "values":"string", "type":"map"}`, `{"type":"map","values":"string"}`, -8732877298790414990},
		{
			`{"name":"PigValue","type":"record", "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}`,
			`{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`,
			-1759257747318642341,
		},

		// Logical types are stripped, leaving the primitive in its simple
		// form (goavro gets this one wrong).
		{`{"type":"long","logicalType":"timestamp-micros"}`, `"long"`, -3434872931120570953},
		{
			`{"type":"record","name":"r","fields":[{"name":"t","type":{"type":"long","logicalType":"timestamp-micros"}}]}`,
			`{"name":"r","type":"record","fields":[{"name":"t","type":"long"}]}`, 0,
		},
		{`{"type":"fixed","name":"d","size":"16","logicalType":"decimal","precision":4}`, `{"name":"d","type":"fixed","size":16}`, 0},
		// Nested named types take the enclosing namespace, references
		// resolve in it, and a type written again is its full name.
		{
			`{"type":"record","name":"Outer","namespace":"a.b","fields":[
				{"name":"x","type":{"type":"enum","name":"E","symbols":["X"]}},
				{"name":"y","type":"E"},
				{"name":"z","type":{"type":"record","name":"c.Inner","fields":[{"name":"w","type":"a.b.Outer"},{"name":"v","type":{"type":"fixed","name":"F","size":2}}]}},
				{"name":"u","type":{"type":"array","items":"c.F"}},
				{"name":"n","type":{"type":"record","name":"N","namespace":"","fields":[]}},
				{"name":"m","type":{"type":"map","values":"N"}}
			]}`,
			`{"name":"a.b.Outer","type":"record","fields":[` +
				`{"name":"x","type":{"name":"a.b.E","type":"enum","symbols":["X"]}},` +
				`{"name":"y","type":"a.b.E"},` +
				`{"name":"z","type":{"name":"c.Inner","type":"record","fields":[{"name":"w","type":"a.b.Outer"},{"name":"v","type":{"name":"c.F","type":"fixed","size":2}}]}},` +
				`{"name":"u","type":{"type":"array","items":"c.F"}},` +
				`{"name":"n","type":{"name":"N","type":"record","fields":[]}},` +
				`{"name":"m","type":{"type":"map","values":"N"}}]}`,
			0,
		},
		{`{"type":"error","name":"Oops","fields":[]}`, `{"name":"Oops","type":"record","fields":[]}`, 0},
	} {
		got, err := parsingCanonicalForm(tc.schema)
		if err != nil {
			t.Errorf("%s: %v", tc.schema, err)
			continue
		}
		if got != tc.canonical {
			t.Errorf("%s:\n got %s\nwant %s", tc.schema, got, tc.canonical)
		}
		if fp := int64(rabin([]byte(got))); tc.fingerprint != 0 && fp != tc.fingerprint {
			t.Errorf("fingerprint of %s: %d, want %d", got, fp, tc.fingerprint)
		}
	}
}

func TestParsingCanonicalFormErrors(t *testing.T) {
	for _, schema := range []string{
		``,
		`{`,
		`"int" "int"`,
		`42`,
		`"Unknown"`,
		`{"type":"record","name":"r","fields":[{"name":"f","type":"Nope"}]}`,
		`{"type":"record","fields":[]}`,
		`{"type":"record","name":"r"}`,
		`{"type":"record","name":"r","fields":[{"type":"int"}]}`,
		`{"type":"record","name":"r","fields":[1]}`,
		`{"type":"enum","name":"e","symbols":[1]}`,
		`{"type":"fixed","name":"f","size":-1}`,
		`{"type":"fixed","name":"f","size":1.5}`,
		`{"type":{"type":"int"}}`,
		`{"type":"array","items":{}}`,
	} {
		if got, err := parsingCanonicalForm(schema); err == nil {
			t.Errorf("%s: got %s, want an error", schema, got)
		}
	}
}

// TestFingerprintMatchesGoavro cross-checks the envelope's canonical form
// and fingerprint with goavro's, on the schema without the logical type
// (which the canonical form drops, and which goavro mishandles).
func TestFingerprintMatchesGoavro(t *testing.T) {
	if got, want := canonicalSchema, plainCodec.CanonicalSchema(); got != want {
		t.Errorf("canonical form:\n got %s\ngoavro %s", got, want)
	}
	if got, want := Fingerprint(), plainCodec.Rabin; got != want {
		t.Errorf("fingerprint %#016x, goavro %#016x", got, want)
	}
	if strings.Contains(canonicalSchema, "logicalType") || strings.Contains(canonicalSchema, "doc") {
		t.Errorf("canonical form keeps attributes it must strip: %s", canonicalSchema)
	}
}

func TestRabin(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"", rabinEmpty},
		{`"int"`, 0x7275d51a3f395c8f},
		{`"string"`, 0x8f014872634503c7},
	} {
		if got := rabin([]byte(tc.in)); got != tc.want {
			t.Errorf("rabin(%q) = %#016x, want %#016x", tc.in, got, tc.want)
		}
	}
}
