package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/samsa-dev/samsa/pkg/kafka"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Resource files hold YAML (or JSON) documents, each a source or a flow:
// "kind: Source" or "kind: Flow" plus the resource's fields exactly as the
// REST API spells them (lowerCamelCase). A document is turned into JSON and
// decoded with protojson, so the file format can never drift from the API.

// Kinds of resources in files.
const (
	kindSource = "Source"
	kindFlow   = "Flow"
)

// resource is one document of a resource file.
type resource struct {
	kind   string
	source *samsav1.Source
	flow   *samsav1.Flow
	where  string // "file.yaml, document 2", for messages
}

func (r *resource) name() string {
	if r.source != nil {
		return r.source.GetName()
	}
	return r.flow.GetName()
}

// ref is "source/orders" or "flow/to-crm".
func (r *resource) ref() string { return strings.ToLower(r.kind) + "/" + r.name() }

// maxDocuments bounds the documents of one file.
const maxDocuments = 10000

// strictJSON refuses fields the API does not know: a misspelt field must
// fail, not be ignored.
var strictJSON = protojson.UnmarshalOptions{DiscardUnknown: false}

// decodeResources reads every document of a resource file. name is used in
// error messages.
func decodeResources(r io.Reader, name string) ([]*resource, error) {
	dec := yaml.NewDecoder(r)
	var out []*resource
	for i := 1; ; i++ {
		where := fmt.Sprintf("%s, document %d", name, i)
		if i > maxDocuments {
			return nil, fmt.Errorf("%s: more than %d documents", name, maxDocuments)
		}
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		var v any
		if err := doc.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if v == nil {
			continue // an empty document, e.g. after a trailing ---
		}
		res, err := decodeResource(v, where)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
}

// decodeResource turns one decoded document into a resource.
func decodeResource(v any, where string) (*resource, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a mapping with kind: Source or kind: Flow", where)
	}
	kind, _ := m["kind"].(string)
	delete(m, "kind")
	js, err := toJSON(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	b, err := json.Marshal(js)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	res := &resource{where: where}
	var msg proto.Message
	switch strings.ToLower(kind) {
	case "source":
		res.kind, res.source = kindSource, &samsav1.Source{}
		msg = res.source
	case "flow":
		res.kind, res.flow = kindFlow, &samsav1.Flow{}
		msg = res.flow
	case "":
		return nil, fmt.Errorf("%s: kind is missing: want kind: Source or kind: Flow", where)
	default:
		return nil, fmt.Errorf("%s: kind %q: want Source or Flow", where, kind)
	}
	if err := strictJSON.Unmarshal(b, msg); err != nil {
		return nil, fmt.Errorf("%s (%s): %s", where, kind, protoMessage(err))
	}
	if res.name() == "" {
		return nil, fmt.Errorf("%s (%s): name is missing", where, res.kind)
	}
	// The server checks names too, but a name with a slash or ".." would
	// reach another route as a URL and be answered with a 404.
	if err := kafka.ValidateName(res.name()); err != nil {
		return nil, fmt.Errorf("%s (%s): %v", where, res.kind, err)
	}
	return res, nil
}

// protoPrefix is what protojson puts before its messages; the position is
// in the JSON made from the document, not in the file, so it only confuses.
var protoPrefix = regexp.MustCompile(`^proto:\s*(syntax error\s*)?(\(line \d+:\d+\):\s*)?`)

// protoMessage is a protojson error without its prefix (and with plain
// spaces: protojson's messages are deliberately unstable in their spacing).
func protoMessage(err error) string {
	return protoPrefix.ReplaceAllString(strings.ReplaceAll(err.Error(), "\u00a0", " "), "")
}

// toJSON converts what yaml.v3 decodes into values encoding/json encodes
// the way protojson expects them.
func toJSON(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := toJSON(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		return nil, errors.New("mapping keys must be strings")
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := toJSON(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	case time.Time:
		// An unquoted date; protojson wants RFC 3339 strings.
		return x.UTC().Format(time.RFC3339Nano), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("%v is not a number JSON can hold", x)
		}
		return x, nil
	case nil, string, bool, int, int64, uint64:
		return x, nil
	}
	return nil, fmt.Errorf("unsupported value %T", v)
}

// encodeYAML renders resources as YAML documents that apply -f accepts.
func encodeYAML(w io.Writer, kind string, msgs ...proto.Message) error {
	for i, m := range msgs {
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		node, err := yamlNode(m)
		if err != nil {
			return err
		}
		if kind != "" {
			node.Content = append([]*yaml.Node{
				{Kind: yaml.ScalarNode, Value: "kind"}, {Kind: yaml.ScalarNode, Value: kind},
			}, node.Content...)
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(node); err != nil {
			return err
		}
		if err := enc.Close(); err != nil {
			return err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// yamlNode converts a message to a YAML mapping, keeping the order of its
// JSON fields.
func yamlNode(m proto.Message) (*yaml.Node, error) {
	b, err := jsonOut.Marshal(m)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	node := doc.Content[0]
	plain(node)
	return node, nil
}

// plain clears the flow and quoting styles JSON input leaves on nodes, so
// the encoder writes block YAML and literal blocks for programs.
func plain(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "\n") {
		// yaml.v3 picks a literal block for any multi-line string, and
		// garbles some (a leading newline); those get double quotes.
		n.Style = yaml.DoubleQuotedStyle
		if literalSafe(n.Value) {
			n.Style = yaml.LiteralStyle
		}
	}
	for _, c := range n.Content {
		plain(c)
	}
}

// literalSafe reports whether a string is multi-line and reads back the
// same from a YAML literal block: no leading blank or indented first line,
// no trailing spaces, only printable characters.
func literalSafe(v string) bool {
	if !strings.Contains(v, "\n") || strings.HasPrefix(v, "\n") || strings.HasPrefix(v, " ") {
		return false
	}
	for _, line := range strings.Split(v, "\n") {
		if strings.HasSuffix(line, " ") || strings.HasSuffix(line, "\t") {
			return false
		}
		for _, r := range line {
			if r < ' ' && r != '\t' || r == 0x7f || r == 0xfeff || r == utf8.RuneError {
				return false
			}
		}
	}
	return true
}

// encodeJSON renders a message as indented JSON.
func encodeJSON(w io.Writer, m proto.Message) error {
	b, err := jsonOut.Marshal(m)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}
