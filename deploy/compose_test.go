package deploy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/samsa-dev/samsa/pkg/secret"
)

// compose is the part of the Compose specification docker-compose.yml
// uses. Decoding is strict: a key outside it (a typo such as depend_on)
// fails the test.
type compose struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Build       string            `yaml:"build"`
	Image       string            `yaml:"image"`
	Hostname    string            `yaml:"hostname"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   dependsOn         `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Restart  string   `yaml:"restart"`
	Profiles []string `yaml:"profiles"`
}

// dependsOn is depends_on in either of its forms: a list of services, or a
// map of services to their condition.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, s := range names {
			(*d)[s] = "service_started"
		}
		return nil
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		dec := n.Decode(&m)
		for s, c := range m {
			(*d)[s] = c.Condition
		}
		return dec
	}
	return fmt.Errorf("depends_on: want a list or a map")
}

func strictYAML(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := strictYAML(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// published parses a port mapping "host_ip:host_port:container_port".
func published(p string) (ip string, host, container int, err error) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return "", 0, 0, fmt.Errorf("port %q: want 127.0.0.1:HOST:CONTAINER", p)
	}
	host, err1 := strconv.Atoi(parts[1])
	container, err2 := strconv.Atoi(parts[2])
	if err := errors.Join(err1, err2); err != nil {
		return "", 0, 0, fmt.Errorf("port %q: %w", p, err)
	}
	return parts[0], host, container, nil
}

func TestComposeFile(t *testing.T) {
	c := loadCompose(t)
	root := repoRoot(t)
	for _, want := range []string{"kafka", "control", "receiver", "transformer", "deliverer", "sink", "prometheus"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("service %s missing", want)
		}
	}

	// Kafka: the official image of the version the tests run against, in
	// KRaft mode, with an internal listener for the services.
	k := c.Services["kafka"]
	pom, err := os.ReadFile(filepath.Join(root, "scripts", "kafka", "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`<kafka.version>([^<]+)</kafka.version>`).FindSubmatch(pom); m == nil {
		t.Errorf("scripts/kafka/pom.xml: no kafka.version")
	} else if want := "apache/kafka:" + string(m[1]); k.Image != want {
		t.Errorf("kafka image %q, want %q (the version scripts/kafka.sh tests against)", k.Image, want)
	}
	if roles := k.Environment["KAFKA_PROCESS_ROLES"]; !strings.Contains(roles, "broker") || !strings.Contains(roles, "controller") {
		t.Errorf("kafka: KAFKA_PROCESS_ROLES %q: want a combined KRaft node", roles)
	}
	// Kafka formats its storage with CLUSTER_ID, a base64url UUID.
	if id, err := base64.RawURLEncoding.DecodeString(k.Environment["CLUSTER_ID"]); err != nil || len(id) != 16 {
		t.Errorf("kafka: CLUSTER_ID %q is not a base64url UUID (16 bytes): %v", k.Environment["CLUSTER_ID"], err)
	}
	if k.Healthcheck == nil || len(k.Healthcheck.Test) == 0 {
		t.Errorf("kafka has no health check, so depends_on cannot wait for it")
	}
	internal := ""
	for _, l := range strings.Split(k.Environment["KAFKA_ADVERTISED_LISTENERS"], ",") {
		if name, addr, ok := strings.Cut(l, "://"); ok && name == k.Environment["KAFKA_INTER_BROKER_LISTENER_NAME"] {
			internal = addr
		}
	}
	if !strings.HasPrefix(internal, "kafka:") {
		t.Errorf("kafka: no advertised inter-broker listener on host kafka: %q", k.Environment["KAFKA_ADVERTISED_LISTENERS"])
	}

	hostPorts := map[int]string{}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			ip, host, _, err := published(p)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if ip != "127.0.0.1" {
				t.Errorf("%s: port %q is published on %q: bind 127.0.0.1 (fixed dev credentials)", name, p, ip)
			}
			if other, dup := hostPorts[host]; dup {
				t.Errorf("host port %d published by %s and %s", host, other, name)
			}
			hostPorts[host] = name
		}
	}

	image := ""
	for _, svc := range services {
		t.Run(svc.name, func(t *testing.T) {
			s := c.Services[svc.name]
			where := "docker-compose " + svc.name
			if s.Build != "." || s.Image == "" {
				t.Errorf("%s: build %q image %q: want the repository's Dockerfile and a tag", where, s.Build, s.Image)
			}
			if image == "" {
				image = s.Image
			} else if s.Image != image {
				t.Errorf("%s: image %q, the other services use %q (one image for all)", where, s.Image, image)
			}
			if len(s.Command) == 0 || s.Command[0] != command(svc.name) {
				t.Fatalf("%s: command %v, want %s first", where, s.Command, command(svc.name))
			}
			if got := s.Environment["SAMSA_KAFKA_BROKERS"]; got != internal {
				t.Errorf("%s: SAMSA_KAFKA_BROKERS %q, want Kafka's internal listener %q", where, got, internal)
			}
			if keys := s.Environment["SAMSA_SECRET_KEYS"]; keys != "" {
				if _, err := secret.New(strings.Split(keys, ",")...); err != nil {
					t.Errorf("%s: SAMSA_SECRET_KEYS: %v", where, err)
				}
			}
			if tokens := s.Environment["SAMSA_TOKENS"]; tokens != "" {
				for _, rt := range strings.Split(tokens, ",") {
					role, tok, _ := strings.Cut(rt, ":")
					if !slices.Contains([]string{"admin", "editor", "viewer"}, role) || tok == "" {
						t.Errorf("%s: SAMSA_TOKENS entry %q: want role:token", where, rt)
					}
				}
			}
			// Ports: published as on the host, exactly the design's.
			want := map[int]bool{svc.httpPort: true}
			if svc.grpcPort != 0 {
				want[svc.grpcPort] = true
			}
			got := map[int]bool{}
			for _, p := range s.Ports {
				if _, host, ctr, err := published(p); err == nil {
					if host != ctr {
						t.Errorf("%s: port %q: publish on the same port as DESIGN.md §5", where, p)
					}
					got[ctr] = true
				}
			}
			if fmt.Sprint(keys(got)) != fmt.Sprint(keys(want)) {
				t.Errorf("%s: publishes %v, DESIGN.md §5 gives %v", where, keys(got), keys(want))
			}
			// Health: the image's probe on the service's /readyz.
			hc := s.Healthcheck
			wantTest := []string{"CMD", "samsa-healthcheck", fmt.Sprintf("http://127.0.0.1:%d/readyz", svc.httpPort)}
			if hc == nil || !slices.Equal(hc.Test, wantTest) {
				t.Errorf("%s: healthcheck %+v, want test %q", where, hc, wantTest)
			}
			if s.DependsOn["kafka"] != "service_healthy" {
				t.Errorf("%s: must wait for kafka to be healthy (depends_on condition service_healthy)", where)
			}
			if svc.name != "control" && s.DependsOn["control"] != "service_healthy" {
				t.Errorf("%s: must wait for control (which creates samsa.flows) to be healthy", where)
			}
			if s.Restart == "" {
				t.Errorf("%s: no restart policy", where)
			}
			t.Run("flags", func(t *testing.T) {
				checkContainerConfig(t, serviceBinary(t, svc.name), containerConfig{
					where: where, service: svc.name, args: s.Command[1:], env: s.Environment,
				})
			})
		})
	}

	t.Run("prometheus", func(t *testing.T) {
		p := c.Services["prometheus"]
		if !slices.Contains(p.Volumes, "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro") {
			t.Errorf("prometheus does not mount deploy/prometheus.yml: %v", p.Volumes)
		}
		b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus.yml"))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Global        map[string]string `yaml:"global"`
			ScrapeConfigs []struct {
				JobName       string `yaml:"job_name"`
				MetricsPath   string `yaml:"metrics_path"`
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"scrape_configs"`
		}
		if err := strictYAML(b, &cfg); err != nil {
			t.Fatalf("deploy/prometheus.yml: %v", err)
		}
		targets := map[string]bool{}
		for _, sc := range cfg.ScrapeConfigs {
			if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
				t.Errorf("job %s scrapes %s", sc.JobName, sc.MetricsPath)
			}
			for _, st := range sc.StaticConfigs {
				for _, tg := range st.Targets {
					targets[tg] = true
				}
			}
		}
		for _, svc := range services {
			if tg := fmt.Sprintf("%s:%d", svc.name, svc.httpPort); !targets[tg] {
				t.Errorf("deploy/prometheus.yml does not scrape %s", tg)
			}
		}
	})

	t.Run("sink and demo", func(t *testing.T) {
		sink, demo := c.Services["sink"], c.Services["demo"]
		if sink.Image != image || demo.Image != image {
			t.Errorf("sink and demo must run the Samsa image %q (samsa sink, samsa apply)", image)
		}
		samsa := cli(t)
		sinkFlags, err := helpOf(samsa, "sink")
		if err != nil {
			t.Fatal(err)
		}
		sinkAddr, sinkSecret := "", ""
		if len(sink.Command) < 2 || sink.Command[0] != "samsa" || sink.Command[1] != "sink" {
			t.Fatalf("sink command %v, want samsa sink ...", sink.Command)
		}
		for _, a := range sink.Command[2:] {
			name, ok := sinkFlags.flagOfArg(a)
			if !ok {
				t.Errorf("sink: %q is not a flag of samsa sink", a)
			}
			switch name {
			case "addr":
				_, sinkAddr, _ = strings.Cut(a, "=")
			case "secret":
				_, sinkSecret, _ = strings.Cut(a, "=")
			}
		}
		_, port, err := splitHostPort(sinkAddr)
		if err != nil || !strings.HasPrefix(sinkAddr, "0.0.0.0:") || !slices.Contains(sink.Ports, fmt.Sprintf("127.0.0.1:%d:%d", port, port)) {
			t.Errorf("sink: --addr %q must listen on 0.0.0.0 on the published port (%v)", sinkAddr, sink.Ports)
		}

		applyFlags, err := helpOf(samsa, "apply")
		if err != nil {
			t.Fatal(err)
		}
		if len(demo.Command) < 2 || demo.Command[0] != "samsa" || demo.Command[1] != "apply" {
			t.Fatalf("demo command %v, want samsa apply ...", demo.Command)
		}
		file := ""
		for i := 2; i < len(demo.Command); i++ {
			name, ok := applyFlags.flagOfArg(demo.Command[i])
			if !ok {
				t.Errorf("demo: %q is not a flag of samsa apply", demo.Command[i])
			}
			if name == "f" && i+1 < len(demo.Command) {
				file = demo.Command[i+1]
				i++
			}
		}
		for env, flag := range map[string]string{"SAMSA_SERVER": "server", "SAMSA_TOKEN": "token"} {
			if _, set := demo.Environment[env]; set && !strings.Contains(applyFlags.help, env) {
				t.Errorf("demo sets %s, which samsa apply does not document (--%s)", env, flag)
			}
		}
		if u, err := url.Parse(demo.Environment["SAMSA_SERVER"]); err != nil || u.Host != fmt.Sprintf("control:%d", 8080) {
			t.Errorf("demo: SAMSA_SERVER %q, want http://control:8080", demo.Environment["SAMSA_SERVER"])
		}
		mounted := ""
		for _, v := range demo.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == file {
				mounted = parts[0]
			}
		}
		if mounted == "" {
			t.Fatalf("demo applies %q, which no volume mounts (%v)", file, demo.Volumes)
		}
		checkDemoFile(t, filepath.Join(root, mounted), port, sinkSecret)
	})
}

// checkDemoFile: the demo resources parse and deliver to the sink, with the
// secret the sink verifies.
func checkDemoFile(t *testing.T, path string, sinkPort int, sinkSecret string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	kinds := map[string]int{}
	for {
		var doc struct {
			Kind        string `yaml:"kind"`
			Destination struct {
				HTTP struct {
					URL           string `yaml:"url"`
					SigningSecret string `yaml:"signingSecret"`
				} `yaml:"http"`
			} `yaml:"destination"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		kinds[doc.Kind]++
		if doc.Kind == "Flow" {
			u, err := url.Parse(doc.Destination.HTTP.URL)
			if err != nil || u.Host != fmt.Sprintf("sink:%d", sinkPort) {
				t.Errorf("%s: flow delivers to %q, want the sink at sink:%d", path, doc.Destination.HTTP.URL, sinkPort)
			}
			if doc.Destination.HTTP.SigningSecret != sinkSecret {
				t.Errorf("%s: the flow signs with %q, the sink verifies %q", path, doc.Destination.HTTP.SigningSecret, sinkSecret)
			}
		}
	}
	if kinds["Source"] != 1 || kinds["Flow"] != 1 {
		t.Errorf("%s: %v, want one Source and one Flow", path, kinds)
	}
}
