package script

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocExamples compiles and runs the Python examples of
// docs/transforms.md on a payload that has every field they use.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/transforms.md")
	if err != nil {
		t.Skip("docs/transforms.md not found")
	}
	const payload = `{"id":"o1","amount":1200,"currency":"eur","test":false,"status":"paid",
		"customer":{"id":"c1","email":"Jane@Example.com"},"items":[{"sku":"A","qty":2},{"sku":"B","qty":11}],
		"card":"4111111111111111","meta_json":"{\"a\":1}","email":"jane@example.com",
		"phone":"+1 (555) 010-9999","tags":"a, b,c","created_at":"2024-05-01T12:00:00Z"}`
	blocks := regexp.MustCompile("(?s)```python\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 10 {
		t.Fatalf("found %d examples", len(blocks))
	}
	for _, b := range blocks {
		src := b[1]
		if strings.Contains(src, "def transform(") {
			p, err := Compile("", src)
			if err != nil {
				t.Errorf("example does not compile: %v\n%s", err, src)
				continue
			}
			res, err := p.Run(context.Background(), testEvent(payload))
			if err != nil {
				t.Errorf("example fails: %v\n%s", err, src)
				continue
			}
			t.Logf("%d outputs, first %s", len(res.Outputs), firstData(res))
			continue
		}
		// A block of filters, one per line, or the transform/filter pair
		// of the introduction.
		for _, line := range strings.Split(strings.TrimSpace(src), "\n") {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "def ") || strings.HasPrefix(line, "    ") || line == "" {
				continue
			}
			p, err := Compile(line, "")
			if err != nil {
				t.Errorf("filter %q does not compile: %v", line, err)
				continue
			}
			if _, err := p.Run(context.Background(), testEvent(payload)); err != nil {
				t.Errorf("filter %q fails: %v", line, err)
			}
		}
	}
}

func firstData(res Result) string {
	if len(res.Outputs) == 0 {
		return "(none)"
	}
	return string(res.Outputs[0].Data)
}
