package deploy

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/config"
)

// service is one of the four services and the ports DESIGN.md §5 gives it:
// httpPort serves /metrics, /healthz and /readyz (and the REST or ingest
// API); grpcPort, when not zero, the gRPC API.
type service struct {
	name     string
	httpPort int
	grpcPort int
}

// services is the contract the chart, the compose file and the binaries'
// defaults must all agree with.
var services = []service{
	{name: "control", httpPort: 8080, grpcPort: 9090},
	{name: "receiver", httpPort: 8081, grpcPort: 9091},
	{name: "transformer", httpPort: 8082},
	{name: "deliverer", httpPort: 8083},
}

func serviceByName(name string) (service, bool) {
	for _, s := range services {
		if s.name == name {
			return s, true
		}
	}
	return service{}, false
}

// command is the name of a service's binary in the image (see Dockerfile).
func command(s string) string { return "samsa-" + s }

// repoRoot is the repository's top directory (tests run in deploy/).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	return root
}

// flagSpec is one flag a binary documents in --help.
type flagSpec struct {
	name string
	typ  string // the value's type word; "" for a boolean flag
	def  string // the default --help prints, "" if none
}

// binary is a built service and the flags its --help lists.
type binary struct {
	path  string
	flags map[string]flagSpec
	// env maps each SAMSA_* variable to its flag (pkg/config).
	env  map[string]string
	help string
}

// hasArg reports whether arg (--name=value, --name value or -name) names a
// flag of the binary.
func (b *binary) flagOfArg(arg string) (string, bool) {
	if !strings.HasPrefix(arg, "-") {
		return "", false
	}
	name := strings.TrimLeft(arg, "-")
	name, _, _ = strings.Cut(name, "=")
	_, ok := b.flags[name]
	return name, ok
}

var (
	buildOnce sync.Once
	binDir    string
	built     map[string]*binary
	buildErrs map[string]error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// serviceBinary builds the service (once per test binary, all services in
// parallel) and returns it with its flags. A service whose directory does
// not exist yet is skipped, by name; one that fails to build or to print
// its flags fails the test.
func serviceBinary(t *testing.T, name string) *binary {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() { buildAll(root) })
	if _, err := os.Stat(filepath.Join(root, "services", name)); os.IsNotExist(err) {
		t.Skipf("services/%s does not exist yet: its flags are not checked", name)
	}
	if err := buildErrs[name]; err != nil {
		t.Fatalf("services/%s: %v", name, err)
	}
	return built[name]
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// cli builds the samsa CLI (cmd/samsa), once; skips when it does not exist.
func cli(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cmd", "samsa")); os.IsNotExist(err) {
		t.Skip("cmd/samsa does not exist yet: the samsa commands are not checked")
	}
	buildOnce.Do(func() { buildAll(root) })
	cliOnce.Do(func() {
		if binDir == "" {
			cliErr = fmt.Errorf("no build directory")
			return
		}
		cliPath, cliErr = goBuild(root, binDir, "./cmd/samsa")
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

func buildAll(root string) {
	built = map[string]*binary{}
	buildErrs = map[string]error{}
	dir, err := os.MkdirTemp("", "samsa-deploy-test-")
	if err != nil {
		for _, s := range services {
			buildErrs[s.name] = err
		}
		return
	}
	binDir = dir
	var present []string
	for _, s := range services {
		if _, err := os.Stat(filepath.Join(root, "services", s.name)); err == nil {
			present = append(present, s.name)
		}
	}
	// One go build for all: it shares the work between packages and keeps
	// its parallelism within -p, beside the other test binaries of
	// go test ./... . When it fails, build one by one to tell which broke.
	pkgs := make([]string, len(present))
	for i, name := range present {
		pkgs[i] = "./services/" + name
	}
	if _, err := goBuild(root, dir, pkgs...); err != nil {
		for _, name := range present {
			if _, err := goBuild(root, dir, "./services/"+name); err != nil {
				buildErrs[name] = err
			}
		}
	}
	for _, name := range present {
		if buildErrs[name] != nil {
			continue
		}
		// go build -o DIR names each binary after its package directory.
		path := filepath.Join(dir, command(name))
		if err := os.Rename(filepath.Join(dir, name), path); err != nil {
			buildErrs[name] = err
			continue
		}
		built[name], buildErrs[name] = helpOf(path)
	}
}

// goTool is the go command: the one on PATH, else the one of GOROOT (go
// test sets it for the test process).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// helpOf runs `path args... --help` and parses the flags it lists.
func helpOf(path string, args ...string) (*binary, error) {
	help, err := runHelp(context.Background(), path, args...)
	if err != nil {
		return nil, err
	}
	flags := parseHelp(help)
	if len(flags) == 0 {
		return nil, fmt.Errorf("%s --help lists no flags:\n%s", strings.Join(append([]string{filepath.Base(path)}, args...), " "), help)
	}
	b := &binary{path: path, flags: flags, env: map[string]string{}, help: help}
	for name := range flags {
		b.env[config.EnvName(name)] = name
	}
	return b, nil
}

// goBuild builds pkgs into dir (go build -o dir/ names each binary after
// its package directory), with -race when the test runs with it, so that
// the build reuses the packages already compiled for the test.
func goBuild(root, dir string, pkgs ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, goTool(), append(args, pkgs...)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, b)
	}
	return filepath.Join(dir, filepath.Base(pkgs[0])), nil
}

// runHelp runs the binary with --help and without any SAMSA_* variable, so
// that nothing but the flag definitions shape the output.
func runHelp(ctx context.Context, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append(args, "--help")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return "", fmt.Errorf("%s --help did not return: %v", filepath.Base(path), ctx.Err())
	}
	// flag.ErrHelp exits non-zero in most mains; the output is what counts.
	_ = err
	return string(out), nil
}

var (
	flagLine   = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9._-]*)(?: ([^\s]+))?(?:\t(.*))?$`)
	defaultRef = regexp.MustCompile(`\(default (?:"([^"]*)"|([^)]*))\)\s*$`)
)

// parseHelp reads the flag package's PrintDefaults format:
//
//	-http-addr string
//	  	address of the ingest HTTP API (default "127.0.0.1:8081")
func parseHelp(help string) map[string]flagSpec {
	flags := map[string]flagSpec{}
	var cur *flagSpec
	var usage strings.Builder
	flush := func() {
		if cur == nil {
			return
		}
		if m := defaultRef.FindStringSubmatch(strings.TrimSpace(usage.String())); m != nil {
			cur.def = m[1] + m[2]
		}
		flags[cur.name] = *cur
		cur = nil
		usage.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flush()
			cur = &flagSpec{name: m[1], typ: m[2]}
			usage.WriteString(m[3])
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    ") {
			usage.WriteString(strings.TrimSpace(line))
			usage.WriteByte(' ')
			continue
		}
		flush()
	}
	flush()
	return flags
}

func TestParseHelp(t *testing.T) {
	help := "Usage of receiver:\n" +
		"  -http-addr string\n    \taddress of the API (default \"127.0.0.1:8081\")\n" +
		"  -insecure\n    \tdevelopment only\n" +
		"  -max-events int\n    \tmost events\n    \tin one request (default 1000)\n" +
		"  -grpc-addr string\n    \tgRPC (empty disables it) (default \"\")\n" +
		"  -v\tverbose\n" +
		"\nEvery flag can also be set in the environment.\n"
	got := parseHelp(help)
	want := map[string]flagSpec{
		"http-addr":  {name: "http-addr", typ: "string", def: "127.0.0.1:8081"},
		"insecure":   {name: "insecure"},
		"max-events": {name: "max-events", typ: "int", def: "1000"},
		"grpc-addr":  {name: "grpc-addr", typ: "string"},
		"v":          {name: "v"},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %v, want %v", got, want)
	}
	for name, w := range want {
		if f := got[name]; f != w {
			t.Errorf("flag %s: got %+v, want %+v", name, f, w)
		}
	}
}

// TestBinariesMatchDesign checks each service's own defaults against
// DESIGN.md §5: every address flag defaults to a loopback address on the
// design's port (so the chart and the compose file, which must make them
// listen on 0.0.0.0, use the same ports as everything else).
func TestBinariesMatchDesign(t *testing.T) {
	for _, s := range services {
		t.Run(s.name, func(t *testing.T) {
			b := serviceBinary(t, s.name)
			want := map[int]bool{s.httpPort: true}
			if s.grpcPort != 0 {
				want[s.grpcPort] = true
			}
			seen := map[int]bool{}
			for _, f := range listenFlags(b) {
				if f.def == "" {
					continue
				}
				host, port, err := splitHostPort(f.def)
				if err != nil {
					t.Errorf("--%s default %q: %v", f.name, f.def, err)
					continue
				}
				if host != "127.0.0.1" && host != "localhost" {
					t.Errorf("--%s defaults to %q: services bind loopback unless configured", f.name, f.def)
				}
				if !want[port] {
					t.Errorf("--%s defaults to port %d; DESIGN.md §5 gives %s the ports %v", f.name, port, s.name, keys(want))
				}
				seen[port] = true
			}
			for p := range want {
				if !seen[p] {
					t.Errorf("no address flag of %s defaults to port %d (flags: %v)", s.name, p, keys(b.flags))
				}
			}
			for _, f := range []string{"kafka-brokers", "log-level", "log-format", "drain-timeout"} {
				if _, ok := b.flags[f]; !ok {
					t.Errorf("%s has no --%s flag", s.name, f)
				}
			}
		})
	}
}

// listenFlags are the flags that set a listening address (*-addr).
func listenFlags(b *binary) []flagSpec {
	var out []flagSpec
	for _, f := range b.flags {
		if strings.HasSuffix(f.name, "-addr") {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func splitHostPort(addr string) (string, int, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("no port in %q", addr)
	}
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return addr[:i], p, nil
}

func keys[K cmp.Ordered, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// containerConfig is what a deployment file gives one service container:
// its command line and environment.
type containerConfig struct {
	where   string // for messages
	service string
	args    []string          // after the command
	env     map[string]string // values; "" when from a Secret or ConfigMap
}

// checkContainerConfig checks a container's flags and variables against
// the service binary, and that it listens on every interface on the
// design's ports.
func checkContainerConfig(t *testing.T, b *binary, c containerConfig) {
	t.Helper()
	set := map[string]string{} // flag → value, from args then env
	for i := 0; i < len(c.args); i++ {
		a := c.args[i]
		name, ok := b.flagOfArg(a)
		if !ok {
			t.Errorf("%s: argument %q is not a flag of %s", c.where, a, c.service)
			continue
		}
		if _, v, hasV := strings.Cut(a, "="); hasV {
			set[name] = v
		} else if i+1 < len(c.args) && b.flags[name].typ != "" {
			set[name] = c.args[i+1]
			i++
		} else {
			set[name] = "true"
		}
	}
	for name, v := range c.env {
		if !strings.HasPrefix(name, "SAMSA_") {
			if !allowedForeignEnv[name] {
				t.Errorf("%s: environment variable %s is neither SAMSA_* nor a known runtime variable", c.where, name)
			}
			continue
		}
		f, ok := b.env[name]
		if !ok {
			t.Errorf("%s: %s sets no flag of %s", c.where, name, c.service)
			continue
		}
		if _, dup := set[f]; !dup {
			set[f] = v
		}
	}
	s, _ := serviceByName(c.service)
	ports := map[int]bool{s.httpPort: true}
	if s.grpcPort != 0 {
		ports[s.grpcPort] = true
	}
	for _, f := range listenFlags(b) {
		v, ok := set[f.name]
		if !ok {
			if f.def != "" {
				t.Errorf("%s: --%s is not set: %s would listen on %s only", c.where, f.name, c.service, f.def)
			}
			continue
		}
		if v == "" {
			continue // disabled
		}
		host, port, err := splitHostPort(v)
		if err != nil {
			t.Errorf("%s: --%s=%q: %v", c.where, f.name, v, err)
			continue
		}
		if host != "0.0.0.0" && host != "" {
			t.Errorf("%s: --%s=%q: a container must listen on every interface", c.where, f.name, v)
		}
		if !ports[port] {
			t.Errorf("%s: --%s=%q: DESIGN.md §5 gives %s the ports %v", c.where, f.name, v, c.service, keys(ports))
		}
	}
	if _, ok := set["kafka-brokers"]; !ok {
		t.Errorf("%s: the Kafka brokers are not configured", c.where)
	}
	// Whatever the binary needs to start without --insecure.
	if set["insecure"] != "true" {
		for _, f := range []string{"secret-keys", "tokens"} {
			if _, has := b.flags[f]; !has {
				continue
			}
			_, viaFile := set[f+"-file"]
			if _, ok := set[f]; !ok && !viaFile {
				t.Errorf("%s: %s takes --%s and runs without --insecure, but neither the flag nor %s is set", c.where, c.service, f, config.EnvName(f))
			}
		}
	}
}

// allowedForeignEnv are the non-SAMSA variables containers may set.
var allowedForeignEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GODEBUG": true, "TZ": true}
