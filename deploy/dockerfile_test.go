package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerStage is one FROM ... stage of the Dockerfile.
type dockerStage struct {
	from  string // the base image, ARG defaults substituted
	lines []string
}

// parseDockerfile joins continuation lines, drops comments and splits the
// instructions into stages.
func parseDockerfile(t *testing.T, text string) (args map[string]string, stages []dockerStage) {
	t.Helper()
	args = map[string]string{}
	var logical []string
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		if line := strings.Join(strings.Fields(cur+trimmed), " "); line != "" {
			logical = append(logical, line)
		}
		cur = ""
	}
	argRef := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	for _, l := range logical {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "ARG":
			for _, a := range strings.Fields(rest) {
				k, v, _ := strings.Cut(a, "=")
				if _, seen := args[k]; !seen || v != "" {
					args[k] = v
				}
			}
			if len(stages) > 0 {
				stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, l)
			}
		case "FROM":
			f := strings.Fields(rest)
			image := f[0]
			if strings.HasPrefix(image, "--platform") && len(f) > 1 {
				image = f[1]
			}
			image = argRef.ReplaceAllStringFunc(image, func(m string) string {
				return args[argRef.FindStringSubmatch(m)[1]]
			})
			stages = append(stages, dockerStage{from: image})
		default:
			if len(stages) == 0 {
				t.Fatalf("Dockerfile: %q before FROM", l)
			}
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, l)
		}
	}
	return args, stages
}

// TestDockerfile: a multi-stage build of static binaries into a distroless
// image that runs as uid 65532, with every binary the chart and the compose
// file start.
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	_, stages := parseDockerfile(t, string(b))
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	all := strings.Join(build.lines, "\n")
	if !strings.HasPrefix(build.from, "golang:") {
		t.Errorf("build stage FROM %q, want the golang image", build.from)
	}
	if !strings.Contains(all, "CGO_ENABLED=0") {
		t.Errorf("the build stage must set CGO_ENABLED=0 (static binaries for a distroless base)")
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err == nil && !strings.Contains(all, "COPY go.mod go.sum go.work go.work.sum ./") {
		t.Errorf("the repository builds as a workspace (go.work, as make build does): copy go.work and go.work.sum with go.mod")
	}
	if !strings.Contains(all, "go mod download") || !strings.Contains(all, "--mount=type=cache,target=/go/pkg/mod") {
		t.Errorf("the build stage must download modules in their own cached step")
	}
	if !strings.Contains(final.from, "distroless/static") || !strings.HasSuffix(final.from, ":nonroot") {
		t.Errorf("runtime stage FROM %q, want distroless/static:nonroot", final.from)
	}
	if !slices.Contains(final.lines, "USER 65532:65532") {
		t.Errorf("runtime stage must run as USER 65532:65532 (the chart's runAsUser)")
	}
	for _, l := range final.lines {
		if strings.HasPrefix(l, "RUN ") {
			t.Errorf("runtime stage runs %q: distroless has no shell", l)
		}
	}
	// The binaries: samsa-<service> for each service, the CLI, the probe.
	loop := regexp.MustCompile(`for s in ([a-z ]+); do go build [^;]* -o "/out/samsa-\$s" "\./services/\$s"`).FindStringSubmatch(all)
	if loop == nil {
		t.Fatalf("no loop building /out/samsa-$s from ./services/$s in:\n%s", all)
	}
	built := strings.Fields(loop[1])
	for _, s := range services {
		if !slices.Contains(built, s.name) {
			t.Errorf("the image lacks %s", command(s.name))
		}
	}
	for out, pkg := range map[string]string{"/out/samsa": "./cmd/samsa", "/out/samsa-healthcheck": "./deploy/healthcheck"} {
		if !strings.Contains(all, "-o "+out+" "+pkg) {
			t.Errorf("the image lacks %s built from %s", out, pkg)
		}
		t.Run(pkg, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
				t.Skipf("%s does not exist yet: the image build needs it", pkg)
			}
		})
	}
	if !strings.Contains(strings.Join(final.lines, "\n"), "COPY --from=build /out/ /usr/local/bin/") {
		t.Errorf("the runtime stage must copy the binaries to /usr/local/bin (on PATH)")
	}

	// The build context must hold what go build reads.
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(ignore), "\n") {
		l = strings.TrimSuffix(strings.TrimSpace(l), "/")
		for _, needed := range []string{"go.mod", "go.sum", "cmd", "pkg", "proto", "services", "deploy", "*", "**"} {
			if l == needed {
				t.Errorf(".dockerignore excludes %s, which the build needs", l)
			}
		}
	}
}
