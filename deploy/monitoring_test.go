package deploy

import (
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

var metricLiteral = regexp.MustCompile(`"(samsa_[a-z0-9_]+)"`)

// registeredMetrics collects the metric names the services and shared
// packages register: every "samsa_..." string literal in their non-test Go
// files.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	root := repoRoot(t)
	out := map[string]bool{}
	for _, dir := range []string{"services", "pkg"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range metricLiteral.FindAllStringSubmatch(string(b), -1) {
				out[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) == 0 {
		t.Fatal("no samsa_* metric found in services/ and pkg/")
	}
	return out
}

// knownMetric: registered by Samsa (histograms add _bucket, _sum and
// _count), or a standard series of every target (up) or of the Go and
// process collectors that telemetry.NewRegistry registers.
func knownMetric(name string, metrics map[string]bool) bool {
	if metrics[name] || name == "up" || strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && metrics[base] {
			return true
		}
	}
	return false
}

var promParser = parser.NewParser(parser.Options{})

// checkQuery parses q as PromQL and checks the metrics it selects.
func checkQuery(t *testing.T, where, q string, metrics map[string]bool) {
	t.Helper()
	expr, err := promParser.ParseExpr(q)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, q)
		return
	}
	n := 0
	for _, sel := range parser.ExtractSelectors(expr) {
		for _, m := range sel {
			if m.Name != "__name__" {
				continue
			}
			n++
			if !knownMetric(m.Value, metrics) {
				t.Errorf("%s: metric %s is not registered by any service\n%s", where, m.Value, q)
			}
		}
	}
	if n == 0 {
		t.Errorf("%s: selects no metric by name: %s", where, q)
	}
}

var (
	grafanaRange    = regexp.MustCompile(`\$__(rate_interval|interval|range)`)
	grafanaVariable = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?`)
	labelValues     = regexp.MustCompile(`^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\)$`)
)

// grafanaToPromQL replaces Grafana's variables by values PromQL accepts.
func grafanaToPromQL(q string) string {
	q = grafanaRange.ReplaceAllString(q, "5m")
	return grafanaVariable.ReplaceAllString(q, "x")
}

// checkDashboard checks a Grafana dashboard: JSON, unique panel ids, every
// query and variable query valid PromQL over registered metrics.
func checkDashboard(t *testing.T, where string, raw []byte, metrics map[string]bool) {
	t.Helper()
	var dash struct {
		Title      string           `json:"title"`
		UID        string           `json:"uid"`
		Panels     []map[string]any `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Errorf("%s: needs a title, a uid and panels", where)
	}
	ids := map[float64]bool{}
	queries := 0
	for _, p := range dash.Panels {
		id, _ := p["id"].(float64)
		if ids[id] {
			t.Errorf("%s: panel id %v used twice", where, id)
		}
		ids[id] = true
		gp, _ := p["gridPos"].(map[string]any)
		if x, w := gp["x"].(float64), gp["w"].(float64); w <= 0 || x+w > 24 {
			t.Errorf("%s: panel %q is outside the 24-column grid: %v", where, p["title"], gp)
		}
		targets, _ := p["targets"].([]any)
		if p["type"] != "row" && len(targets) == 0 {
			t.Errorf("%s: panel %q has no query", where, p["title"])
		}
		for _, tg := range targets {
			expr, _ := tg.(map[string]any)["expr"].(string)
			queries++
			checkQuery(t, where+" panel "+p["title"].(string), grafanaToPromQL(expr), metrics)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)["query"].(string)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", where, v.Name, q)
			continue
		}
		checkQuery(t, where+" variable "+v.Name, grafanaToPromQL(m[1]), metrics)
	}
	if queries < 20 {
		t.Errorf("%s: only %d queries", where, queries)
	}
}

func TestGrafanaToPromQL(t *testing.T) {
	got := grafanaToPromQL(`sum(rate(m{namespace="$namespace",flow=~"${flow}"}[$__rate_interval]))`)
	if want := `sum(rate(m{namespace="x",flow=~"x"}[5m]))`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
