package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/samsa-dev/samsa/pkg/secret"
)

const (
	releaseName      = "samsa"
	releaseNamespace = "samsa"
	fullName         = "samsa" // release "samsa" of chart "samsa"
	kubeVersion      = "v1.33.0"
)

// manifest is one rendered object, decoded into its API type.
type manifest struct {
	source string // template that rendered it
	kind   string
	meta   metav1.Object
	obj    any
}

func (m manifest) String() string { return m.kind + "/" + m.meta.GetName() + " (" + m.source + ")" }

// release is a rendered chart.
type release struct {
	objects  []manifest
	notes    string
	external map[string]bool // Secrets the values reference but the chart does not create
}

func (r *release) all(kind string) []manifest {
	var out []manifest
	for _, m := range r.objects {
		if m.kind == kind {
			out = append(out, m)
		}
	}
	return out
}

func (r *release) find(kind, name string) (manifest, bool) {
	for _, m := range r.objects {
		if m.kind == kind && m.meta.GetName() == name {
			return m, true
		}
	}
	return manifest{}, false
}

func (r *release) deployments() []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, m := range r.all("Deployment") {
		out = append(out, m.obj.(*appsv1.Deployment))
	}
	return out
}

// deploymentSelectedBy returns the Deployments whose pods sel selects.
func (r *release) deploymentSelectedBy(sel labels.Selector) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range r.deployments() {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func chartDir(t testing.TB) string { return filepath.Join(repoRoot(t), "charts", "samsa") }

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

func capabilities(t testing.TB) *chartutil.Capabilities {
	t.Helper()
	caps := chartutil.DefaultCapabilities.Copy()
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps.KubeVersion = *kv
	caps.APIVersions = append(caps.APIVersions, "monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")
	return caps
}

// render renders the chart as `helm install` would, without a cluster:
// values validated against values.schema.json, the kubeVersion constraint
// checked, templates rendered strictly (a reference to a missing value
// fails), every manifest decoded strictly.
func render(t *testing.T, vals map[string]any) (*release, error) {
	t.Helper()
	ch := loadChart(t)
	caps := capabilities(t)
	if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, caps.KubeVersion.String()) {
		t.Fatalf("chart kubeVersion %q excludes %s", c, caps.KubeVersion.String())
	}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: releaseNamespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Engine{Strict: true}.Render(ch, top)
	if err != nil {
		return nil, err
	}
	r := &release{external: map[string]bool{}}
	for _, p := range keys(files) {
		content := files[p]
		if strings.HasSuffix(p, "NOTES.txt") {
			r.notes = content
			continue
		}
		for i, doc := range splitYAML(content) {
			m, err := decode(doc)
			if err != nil {
				t.Fatalf("%s, document %d: %v\n%s", p, i+1, err, doc)
			}
			if m == nil {
				continue
			}
			m.source = p
			r.objects = append(r.objects, *m)
		}
	}
	values := top["Values"].(chartutil.Values)
	for _, path := range []string{"kafka.tls.existingSecret", "kafka.sasl.existingSecret", "auth.existingSecret", "encryption.existingSecret", "control.grpcTLS.existingSecret", "kafka.tls.clientCertSecret"} {
		if v, err := values.PathValue(path); err == nil && v != "" {
			r.external[v.(string)] = true
		}
	}
	return r, nil
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

func splitYAML(s string) []string {
	var out []string
	for _, d := range docSeparator.Split(s, -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			out = append(out, d)
		}
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// newObject returns the API type of every kind the chart may render.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "networking.k8s.io/v1 Ingress":
		return &networkingv1.Ingress{}, nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &monv1.ServiceMonitor{}, nil
	case "monitoring.coreos.com/v1 PrometheusRule":
		return &monv1.PrometheusRule{}, nil
	}
	return nil, fmt.Errorf("unexpected kind %s %s", apiVersion, kind)
}

// decode decodes one YAML document strictly: unknown or duplicate fields
// fail.
func decode(doc string) (*manifest, error) {
	var tm metav1.TypeMeta
	if err := sigsyaml.Unmarshal([]byte(doc), &tm); err != nil {
		return nil, err
	}
	if tm.Kind == "" || tm.APIVersion == "" {
		return nil, fmt.Errorf("no apiVersion or kind")
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, err
	}
	if err := sigsyaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		return nil, fmt.Errorf("strict decoding into %T: %w", obj, err)
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	return &manifest{kind: tm.Kind, meta: acc, obj: obj}, nil
}

// readValues reads a values file of the chart.
func readValues(t *testing.T, rel string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(filepath.Join(chartDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// with returns vals with the dotted paths set (a deep copy).
func with(vals map[string]any, set map[string]any) map[string]any {
	out := deepCopy(vals).(map[string]any)
	for path, v := range set {
		m := out
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case chartutil.Values:
		return deepCopy(map[string]any(v))
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// chartCase is one set of values and what its release must hold besides
// the checks every release passes.
type chartCase struct {
	name   string
	values map[string]any
	kinds  map[string]int // objects per kind
	check  func(t *testing.T, r *release)
}

func chartCases(t *testing.T) []chartCase {
	prod := readValues(t, "examples/production-values.yaml")
	return []chartCase{
		{
			name:   "default values",
			values: map[string]any{},
			kinds: map[string]int{"Deployment": 4, "Service": 4, "PodDisruptionBudget": 4, "NetworkPolicy": 4,
				"ConfigMap": 1, "Secret": 2, "ServiceAccount": 1},
			check: func(t *testing.T, r *release) {
				tokens := secretValue(t, r, fullName, "tokens")
				role, tok, ok := strings.Cut(tokens, ":")
				if !ok || role != "admin" || len(tok) < 32 {
					t.Errorf("generated tokens %q: want admin:<at least 32 characters>", tokens)
				}
				keys := secretValue(t, r, fullName+"-encryption", "secret-keys")
				if _, err := secret.New(strings.Split(keys, ",")...); err != nil {
					t.Errorf("generated encryption key does not open a secret.Box: %v", err)
				}
				enc, _ := r.find("Secret", fullName+"-encryption")
				if enc.meta.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
					t.Errorf("%s: the generated encryption key must survive helm uninstall (helm.sh/resource-policy: keep)", enc)
				}
				for _, d := range r.deployments() {
					if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
						t.Errorf("%s: replicas %v, want at least 2 by default", d.Name, d.Spec.Replicas)
					}
					aff := d.Spec.Template.Spec.Affinity
					if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
						aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
						t.Errorf("%s: want a preferred pod anti-affinity by hostname, got %+v", d.Name, aff)
					}
				}
				if env := containerEnv(r, "control"); env["SAMSA_TOKENS"] == nil {
					t.Errorf("control has no SAMSA_TOKENS")
				}
				for _, want := range []string{"SAMSA_TOKEN=$(kubectl", "Back it up now", fullName + "-control"} {
					if !strings.Contains(r.notes, want) {
						t.Errorf("NOTES.txt lacks %q:\n%s", want, r.notes)
					}
				}
			},
		},
		{
			name:   "production values",
			values: prod,
			kinds: map[string]int{"Deployment": 4, "Service": 4, "PodDisruptionBudget": 4, "NetworkPolicy": 4,
				"ConfigMap": 2, "ServiceAccount": 1, "HorizontalPodAutoscaler": 1, "Ingress": 2,
				"ServiceMonitor": 4, "PrometheusRule": 1},
			check: func(t *testing.T, r *release) {
				for _, d := range r.deployments() {
					pod := d.Spec.Template.Spec
					c := pod.Containers[0]
					env := containerEnv(r, c.Name)
					if ref := env["SAMSA_KAFKA_SASL_PASSWORD"]; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "samsa-kafka" || ref.SecretKeyRef.Key != "password" {
						t.Errorf("%s: SAMSA_KAFKA_SASL_PASSWORD from %+v, want Secret samsa-kafka key password", d.Name, ref)
					}
					cm := configMapData(t, r, fullName)
					if cm["SAMSA_KAFKA_TLS"] != "true" || cm["SAMSA_KAFKA_CA_FILE"] != "/etc/samsa/kafka-tls/ca.crt" || cm["SAMSA_KAFKA_SASL_MECHANISM"] != "SCRAM-SHA-512" {
						t.Errorf("ConfigMap %s: Kafka TLS/SASL settings missing: %v", fullName, cm)
					}
					if !mountsSecret(pod, c, "samsa-kafka", "/etc/samsa/kafka-tls") {
						t.Errorf("%s: Secret samsa-kafka is not mounted at /etc/samsa/kafka-tls", d.Name)
					}
					if len(pod.TopologySpreadConstraints) != 1 || pod.TopologySpreadConstraints[0].LabelSelector == nil {
						t.Errorf("%s: want one topology spread constraint with the component's selector, got %+v", d.Name, pod.TopologySpreadConstraints)
					} else if sel, err := metav1.LabelSelectorAsSelector(pod.TopologySpreadConstraints[0].LabelSelector); err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
						t.Errorf("%s: the topology spread constraint does not select its own pods", d.Name)
					}
				}
				if d, _ := r.find("Deployment", fullName+"-receiver"); d.obj.(*appsv1.Deployment).Spec.Replicas != nil {
					t.Errorf("the receiver's replicas are set although its HorizontalPodAutoscaler owns them")
				}
				if a := containerArgs(r, "transformer"); !slices.Contains(a, "--max-batch=5000") {
					t.Errorf("transformer args %v lack the extra --max-batch=5000", a)
				}
				for _, np := range r.all("NetworkPolicy") {
					p := np.obj.(*networkingv1.NetworkPolicy)
					if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(p.Spec.Egress) < 2 {
						t.Errorf("%s: egress restriction missing: %+v", np, p.Spec)
					}
				}
				if dash, ok := r.find("ConfigMap", fullName+"-dashboard"); !ok || dash.meta.GetNamespace() != "monitoring" || dash.meta.GetLabels()["grafana_dashboard"] != "1" {
					t.Errorf("dashboard ConfigMap missing, or not in namespace monitoring with label grafana_dashboard=1: %v", dash)
				}
			},
		},
		{
			name: "insecure, inline secrets, mutual TLS, everything optional on",
			values: map[string]any{
				"auth":       map[string]any{"insecure": true},
				"encryption": map[string]any{"keys": []any{"k2:" + b64(32, 2), "k1:" + b64(32, 1)}},
				"kafka": map[string]any{
					"brokers": []any{"b-1.example:9096", "b-2.example:9096"},
					"tls": map[string]any{"enabled": true, "existingSecret": "kafka-ca", "caKey": "ca.pem",
						"clientCertSecret": "kafka-user", "certKey": "user.crt", "keyKey": "user.key", "serverName": "kafka.example"},
					"sasl": map[string]any{"mechanism": "PLAIN", "username": "svc", "password": "s3cret"},
				},
				"control": map[string]any{"autoscaling": map[string]any{"enabled": true}, "podAntiAffinity": "none",
					"grpcTLS": map[string]any{"existingSecret": "control-grpc-tls", "clientAuth": true},
					"ingress": map[string]any{"enabled": true, "hosts": []any{map[string]any{"host": "api.example", "paths": []any{map[string]any{"path": "/", "pathType": "Prefix"}}}}}},
				"receiver":    map[string]any{"autoscaling": map[string]any{"enabled": true}, "podAntiAffinity": "hard", "preStopSleepSeconds": 0},
				"transformer": map[string]any{"autoscaling": map[string]any{"enabled": true}, "podDisruptionBudget": map[string]any{"enabled": false}},
				"deliverer":   map[string]any{"autoscaling": map[string]any{"enabled": true}, "env": []any{map[string]any{"name": "SAMSA_LOG_LEVEL", "value": "debug"}}},
				"metrics": map[string]any{
					"serviceMonitor":   map[string]any{"enabled": true},
					"prometheusRule":   map[string]any{"enabled": true},
					"grafanaDashboard": map[string]any{"enabled": true},
				},
				"networkPolicy":  map[string]any{"egress": map[string]any{"enabled": true}},
				"serviceAccount": map[string]any{"create": false, "name": "existing-sa"},
			},
			kinds: map[string]int{"Deployment": 4, "Service": 4, "PodDisruptionBudget": 3, "NetworkPolicy": 4,
				"ConfigMap": 2, "Secret": 2, "HorizontalPodAutoscaler": 4, "Ingress": 1, "ServiceMonitor": 4, "PrometheusRule": 1},
			check: func(t *testing.T, r *release) {
				for _, name := range []string{"control", "receiver"} {
					if a := containerArgs(r, name); !slices.Contains(a, "--insecure") {
						t.Errorf("%s args %v lack --insecure", name, a)
					}
				}
				if env := containerEnv(r, "control"); env["SAMSA_TOKENS"] != nil {
					t.Errorf("insecure control still reads SAMSA_TOKENS")
				}
				ctl := deploymentOf(r, "control")
				if !mountsSecret(ctl.Spec.Template.Spec, ctl.Spec.Template.Spec.Containers[0], "control-grpc-tls", "/etc/samsa/grpc-tls") {
					t.Errorf("control: Secret control-grpc-tls is not mounted at /etc/samsa/grpc-tls")
				}
				ctlEnv := map[string]string{}
				for _, e := range ctl.Spec.Template.Spec.Containers[0].Env {
					ctlEnv[e.Name] = e.Value
				}
				if ctlEnv["SAMSA_GRPC_TLS_CERT"] != "/etc/samsa/grpc-tls/tls.crt" || ctlEnv["SAMSA_GRPC_TLS_KEY"] != "/etc/samsa/grpc-tls/tls.key" || ctlEnv["SAMSA_GRPC_CLIENT_CA"] != "/etc/samsa/grpc-tls/ca.crt" {
					t.Errorf("control: gRPC TLS settings %v", ctlEnv)
				}
				if got := secretValue(t, r, fullName, "kafka-sasl-password"); got != "s3cret" {
					t.Errorf("kafka-sasl-password = %q", got)
				}
				if got := secretValue(t, r, fullName+"-encryption", "secret-keys"); !strings.HasPrefix(got, "k2:") || strings.Count(got, ",") != 1 {
					t.Errorf("secret-keys = %q, want the two given keys, k2 first", got)
				}
				cm := configMapData(t, r, fullName)
				for k, v := range map[string]string{"SAMSA_KAFKA_CERT_FILE": "/etc/samsa/kafka-tls/tls.crt", "SAMSA_KAFKA_KEY_FILE": "/etc/samsa/kafka-tls/tls.key",
					"SAMSA_KAFKA_TLS_SERVER_NAME": "kafka.example", "SAMSA_KAFKA_SASL_USERNAME": "svc", "SAMSA_KAFKA_BROKERS": "b-1.example:9096,b-2.example:9096"} {
					if cm[k] != v {
						t.Errorf("ConfigMap %s = %q, want %q", k, cm[k], v)
					}
				}
				for _, d := range r.deployments() {
					if d.Spec.Replicas != nil {
						t.Errorf("%s: replicas set although autoscaled", d.Name)
					}
					pod := d.Spec.Template.Spec
					for _, sec := range []string{"kafka-ca", "kafka-user"} {
						if !mountsSecret(pod, pod.Containers[0], sec, "/etc/samsa/kafka-tls") {
							t.Errorf("%s: Secret %s is not mounted at /etc/samsa/kafka-tls", d.Name, sec)
						}
					}
					if d.Spec.Template.Spec.ServiceAccountName != "existing-sa" {
						t.Errorf("%s: service account %q, want existing-sa", d.Name, d.Spec.Template.Spec.ServiceAccountName)
					}
					aff := d.Spec.Template.Spec.Affinity
					switch d.Labels["app.kubernetes.io/component"] {
					case "control":
						if aff != nil {
							t.Errorf("control: podAntiAffinity none still renders %+v", aff)
						}
					case "receiver":
						if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
							t.Errorf("receiver: podAntiAffinity hard renders %+v", aff)
						}
						if d.Spec.Template.Spec.Containers[0].Lifecycle != nil {
							t.Errorf("receiver: preStopSleepSeconds 0 still renders a preStop hook")
						}
					}
				}
				if strings.Contains(r.notes, "SAMSA_TOKEN=") || !strings.Contains(r.notes, "auth.insecure is true") {
					t.Errorf("NOTES.txt does not warn about insecure mode:\n%s", r.notes)
				}
			},
		},
	}
}

func b64(n int, fill byte) string {
	return encodeBase64(slices.Repeat([]byte{fill}, n))
}

func TestChartRenders(t *testing.T) {
	metrics := registeredMetrics(t)
	for _, tc := range chartCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			r, err := render(t, tc.values)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			counts := map[string]int{}
			for _, m := range r.objects {
				counts[m.kind]++
			}
			for _, k := range keys(mergeKeys(counts, tc.kinds)) {
				if counts[k] != tc.kinds[k] {
					t.Errorf("%d objects of kind %s, want %d", counts[k], k, tc.kinds[k])
				}
			}
			checkObjects(t, r)
			checkDeployments(t, r)
			checkServices(t, r)
			checkPolicies(t, r)
			checkMonitoring(t, r, metrics)
			if r.notes == "" {
				t.Errorf("NOTES.txt renders empty")
			}
			tc.check(t, r)
			t.Run("flags", func(t *testing.T) { checkChartFlags(t, r) })
		})
	}
}

func mergeKeys(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k := range a {
		out[k] = 0
	}
	for k := range b {
		out[k] = 0
	}
	return out
}

// checkObjects: names, labels and namespaces valid; no duplicates; every
// Secret and ConfigMap reference resolves.
func checkObjects(t *testing.T, r *release) {
	seen := map[string]bool{}
	for _, m := range r.objects {
		name := m.meta.GetName()
		if seen[m.kind+"/"+name] {
			t.Errorf("%s rendered twice", m)
		}
		seen[m.kind+"/"+name] = true
		errs := validation.IsDNS1123Subdomain(name)
		if m.kind == "Service" {
			errs = validation.IsDNS1035Label(name)
		}
		for _, e := range errs {
			t.Errorf("%s: name: %s", m, e)
		}
		if ns := m.meta.GetNamespace(); ns != releaseNamespace && !(m.kind == "ConfigMap" && strings.HasSuffix(name, "-dashboard")) {
			t.Errorf("%s: namespace %q, want the release's %q", m, ns, releaseNamespace)
		}
		checkLabels(t, m.String(), m.meta.GetLabels())
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if m.meta.GetLabels()[l] == "" {
				t.Errorf("%s: label %s missing", m, l)
			}
		}
		if s, ok := m.obj.(*corev1.Secret); ok {
			for k, v := range s.Data {
				if len(v) == 0 {
					t.Errorf("%s: key %s is empty", m, k)
				}
			}
		}
	}
}

func checkLabels(t *testing.T, where string, l map[string]string) {
	t.Helper()
	for k, v := range l {
		for _, e := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label key %q: %s", where, k, e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			t.Errorf("%s: label %s=%q: %s", where, k, v, e)
		}
	}
}

func secretValue(t *testing.T, r *release, name, key string) string {
	t.Helper()
	m, ok := r.find("Secret", name)
	if !ok {
		t.Fatalf("Secret %s not rendered", name)
	}
	s := m.obj.(*corev1.Secret)
	v, ok := s.Data[key]
	if !ok {
		t.Fatalf("Secret %s has no key %s (has %v)", name, key, keys(s.Data))
	}
	return string(v)
}

func configMapData(t *testing.T, r *release, name string) map[string]string {
	t.Helper()
	m, ok := r.find("ConfigMap", name)
	if !ok {
		t.Fatalf("ConfigMap %s not rendered", name)
	}
	return m.obj.(*corev1.ConfigMap).Data
}

func deploymentOf(r *release, component string) *appsv1.Deployment {
	for _, d := range r.deployments() {
		if d.Labels["app.kubernetes.io/component"] == component {
			return d
		}
	}
	return nil
}

func containerArgs(r *release, component string) []string {
	if d := deploymentOf(r, component); d != nil {
		return d.Spec.Template.Spec.Containers[0].Args
	}
	return nil
}

// containerEnv maps the explicit environment of a component's container to
// its source (nil for a literal value: use a non-nil empty source).
func containerEnv(r *release, component string) map[string]*corev1.EnvVarSource {
	out := map[string]*corev1.EnvVarSource{}
	d := deploymentOf(r, component)
	if d == nil {
		return out
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		src := e.ValueFrom
		if src == nil {
			src = &corev1.EnvVarSource{}
		}
		out[e.Name] = src
	}
	return out
}

// volumeSecrets are the Secrets a volume projects.
func volumeSecrets(v corev1.Volume) []string {
	var out []string
	if v.Secret != nil {
		out = append(out, v.Secret.SecretName)
	}
	if v.Projected != nil {
		for _, src := range v.Projected.Sources {
			if src.Secret != nil {
				out = append(out, src.Secret.Name)
			}
		}
	}
	return out
}

func mountsSecret(pod corev1.PodSpec, c corev1.Container, secretName, path string) bool {
	for _, v := range pod.Volumes {
		if !slices.Contains(volumeSecrets(v), secretName) {
			continue
		}
		for _, vm := range c.VolumeMounts {
			if vm.Name == v.Name && vm.MountPath == path && vm.ReadOnly {
				return true
			}
		}
	}
	return false
}

// drainOf is the drain timeout a container runs with.
func drainOf(t *testing.T, r *release, c corev1.Container) time.Duration {
	t.Helper()
	v := ""
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			v = configMapData(t, r, ef.ConfigMapRef.Name)["SAMSA_DRAIN_TIMEOUT"]
		}
	}
	for _, e := range c.Env {
		if e.Name == "SAMSA_DRAIN_TIMEOUT" {
			v = e.Value
		}
	}
	for _, a := range c.Args {
		if s, ok := strings.CutPrefix(a, "--drain-timeout="); ok {
			v = s
		}
	}
	if v == "" {
		t.Errorf("container %s: no drain timeout set", c.Name)
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Errorf("container %s: drain timeout %q: %v", c.Name, v, err)
	}
	return d
}

// checkDeployments asserts what every Samsa pod must be: one container per
// service, running its binary non-root on a read-only root filesystem
// without privileges or capabilities, probed on /healthz and /readyz on the
// design's port, with requests and limits, and more time to terminate than
// it needs to drain.
func checkDeployments(t *testing.T, r *release) {
	seen := map[string]bool{}
	for _, d := range r.deployments() {
		where := "Deployment " + d.Name
		comp := d.Labels["app.kubernetes.io/component"]
		svc, ok := serviceByName(comp)
		if !ok {
			t.Errorf("%s: unknown component %q", where, comp)
			continue
		}
		seen[comp] = true
		if d.Name != fullName+"-"+comp {
			t.Errorf("%s: want name %s-%s", where, fullName, comp)
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %v does not select its pod template's labels %v", where, d.Spec.Selector, d.Spec.Template.Labels)
		}
		for _, other := range r.deployments() {
			if other != d && sel.Matches(labels.Set(other.Spec.Template.Labels)) {
				t.Errorf("%s: selector also matches the pods of %s", where, other.Name)
			}
		}
		if ru := d.Spec.Strategy.RollingUpdate; d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Errorf("%s: want a rolling update that never takes a pod down before its replacement is ready, got %+v", where, d.Spec.Strategy)
		}
		pod := d.Spec.Template.Spec
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s: the service account token is mounted; Samsa never calls the Kubernetes API", where)
		}
		if pod.ServiceAccountName == "" {
			t.Errorf("%s: no service account", where)
		} else if _, ok := r.find("ServiceAccount", pod.ServiceAccountName); !ok && pod.ServiceAccountName == fullName {
			t.Errorf("%s: ServiceAccount %s not rendered", where, pod.ServiceAccountName)
		}
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("%s: pod security context must run as a non-root uid: %+v", where, psc)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod seccomp profile must be RuntimeDefault", where)
		}
		if len(pod.InitContainers) != 0 || len(pod.Containers) != 1 {
			t.Errorf("%s: want exactly one container, got %d (+%d init)", where, len(pod.Containers), len(pod.InitContainers))
			continue
		}
		c := pod.Containers[0]
		where += " container " + c.Name
		if c.Name != comp || len(c.Command) != 1 || c.Command[0] != command(comp) {
			t.Errorf("%s: command %v, want [%s]", where, c.Command, command(comp))
		}
		if !strings.Contains(c.Image, ":") && !strings.Contains(c.Image, "@sha256:") {
			t.Errorf("%s: image %q has neither tag nor digest", where, c.Image)
		}
		checkContainerSecurity(t, where, c.SecurityContext)
		// Probes.
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		if ports["http"] != int32(svc.httpPort) {
			t.Errorf("%s: port http = %d, DESIGN.md §5 says %d", where, ports["http"], svc.httpPort)
		}
		if svc.grpcPort != 0 && ports["grpc"] != int32(svc.grpcPort) {
			t.Errorf("%s: port grpc = %d, DESIGN.md §5 says %d", where, ports["grpc"], svc.grpcPort)
		}
		checkProbe(t, where+" liveness", c.LivenessProbe, "/healthz", ports, svc.httpPort)
		checkProbe(t, where+" readiness", c.ReadinessProbe, "/readyz", ports, svc.httpPort)
		if c.StartupProbe != nil {
			checkProbe(t, where+" startup", c.StartupProbe, "/healthz", ports, svc.httpPort)
		}
		// Resources.
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[res]
			lim, hasLim := c.Resources.Limits[res]
			if !hasReq || !hasLim {
				t.Errorf("%s: %s request and limit must both be set: %+v", where, res, c.Resources)
				continue
			}
			if req.Cmp(lim) > 0 {
				t.Errorf("%s: %s request %s exceeds its limit %s", where, res, req.String(), lim.String())
			}
		}
		// Termination: longer than the drain plus the preStop sleep.
		var sleep int64
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			if c.Lifecycle.PreStop.Sleep == nil {
				t.Errorf("%s: preStop must be a sleep action (the image has no shell)", where)
			} else {
				sleep = c.Lifecycle.PreStop.Sleep.Seconds
			}
		}
		need := drainOf(t, r, c) + time.Duration(sleep)*time.Second
		if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= need {
			t.Errorf("%s: terminationGracePeriodSeconds %v must exceed drain timeout plus preStop sleep (%v)", where, pod.TerminationGracePeriodSeconds, need)
		}
		// Volumes: a writable /tmp, every mount backed by a volume.
		vols := map[string]corev1.Volume{}
		for _, v := range pod.Volumes {
			vols[v.Name] = v
			for _, name := range volumeSecrets(v) {
				if _, ok := r.find("Secret", name); !ok && !r.external[name] {
					t.Errorf("%s: volume %s mounts Secret %s, which is neither rendered nor named in the values", where, v.Name, name)
				}
			}
		}
		tmp := false
		for _, vm := range c.VolumeMounts {
			v, ok := vols[vm.Name]
			if !ok {
				t.Errorf("%s: mount %s has no volume", where, vm.Name)
			}
			if vm.MountPath == "/tmp" && v.EmptyDir != nil {
				tmp = true
			}
		}
		if !tmp {
			t.Errorf("%s: no writable emptyDir at /tmp (the root filesystem is read-only)", where)
		}
		// Environment references.
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef == nil {
				t.Errorf("%s: envFrom must name a ConfigMap", where)
			} else if _, ok := r.find("ConfigMap", ef.ConfigMapRef.Name); !ok {
				t.Errorf("%s: envFrom ConfigMap %s not rendered", where, ef.ConfigMapRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			if m, ok := r.find("Secret", ref.Name); ok {
				if _, ok := m.obj.(*corev1.Secret).Data[ref.Key]; !ok {
					t.Errorf("%s: %s reads key %s of Secret %s, which lacks it", where, e.Name, ref.Key, ref.Name)
				}
			} else if !r.external[ref.Name] {
				t.Errorf("%s: %s reads Secret %s, which is neither rendered nor named in the values", where, e.Name, ref.Name)
			}
		}
	}
	for _, s := range services {
		if !seen[s.name] {
			t.Errorf("no Deployment of %s", s.name)
		}
	}
}

func checkContainerSecurity(t *testing.T, where string, sc *corev1.SecurityContext) {
	t.Helper()
	switch {
	case sc == nil:
		t.Errorf("%s: no security context", where)
		return
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Errorf("%s: runAsNonRoot must be true", where)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem must be true", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation must be false", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", where)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 {
		t.Errorf("%s: capabilities must drop ALL and add none: %+v", where, sc.Capabilities)
	}
	if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccomp profile %s", where, sc.SeccompProfile.Type)
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Errorf("%s: runs as root", where)
	}
}

func checkProbe(t *testing.T, where string, p *corev1.Probe, path string, ports map[string]int32, want int) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: want an HTTP GET probe on %s", where, path)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s: path %s, want %s", where, p.HTTPGet.Path, path)
	}
	if port := resolvePort(p.HTTPGet.Port, ports); port != int32(want) {
		t.Errorf("%s: port %s resolves to %d, want %d", where, p.HTTPGet.Port.String(), port, want)
	}
}

func resolvePort(p intstr.IntOrString, named map[string]int32) int32 {
	if p.Type == intstr.String {
		return named[p.StrVal]
	}
	return p.IntVal
}

// checkServices: each Service selects exactly one Deployment's pods, on
// named ports those pods have, with the design's port numbers.
func checkServices(t *testing.T, r *release) {
	for _, m := range r.all("Service") {
		s := m.obj.(*corev1.Service)
		ds := r.deploymentSelectedBy(labels.SelectorFromSet(s.Spec.Selector))
		if len(s.Spec.Selector) == 0 || len(ds) != 1 {
			t.Errorf("%s: selector %v selects %d Deployments, want 1", m, s.Spec.Selector, len(ds))
			continue
		}
		comp := ds[0].Labels["app.kubernetes.io/component"]
		svc, _ := serviceByName(comp)
		want := map[string]int32{"http": int32(svc.httpPort)}
		if svc.grpcPort != 0 {
			want["grpc"] = int32(svc.grpcPort)
		}
		podPorts := map[string]int32{}
		for _, p := range ds[0].Spec.Template.Spec.Containers[0].Ports {
			podPorts[p.Name] = p.ContainerPort
		}
		if len(s.Spec.Ports) != len(want) {
			t.Errorf("%s: %d ports, want %v", m, len(s.Spec.Ports), want)
		}
		for _, p := range s.Spec.Ports {
			if want[p.Name] != p.Port {
				t.Errorf("%s: port %s = %d, DESIGN.md §5 says %d", m, p.Name, p.Port, want[p.Name])
			}
			if resolvePort(p.TargetPort, podPorts) != p.Port {
				t.Errorf("%s: port %s targets %s, which the pods do not serve on %d", m, p.Name, p.TargetPort.String(), p.Port)
			}
		}
	}
	for _, m := range r.all("Ingress") {
		in := m.obj.(*networkingv1.Ingress)
		for _, rule := range in.Spec.Rules {
			if rule.HTTP == nil {
				t.Errorf("%s: rule without paths", m)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				b := p.Backend.Service
				if b == nil {
					t.Errorf("%s: backend is not a Service", m)
					continue
				}
				sm, ok := r.find("Service", b.Name)
				if !ok {
					t.Errorf("%s: backend Service %s not rendered", m, b.Name)
					continue
				}
				found := false
				for _, sp := range sm.obj.(*corev1.Service).Spec.Ports {
					found = found || sp.Name == b.Port.Name
				}
				if !found || b.Port.Name != "http" {
					t.Errorf("%s: backend port %q, want the Service's http port", m, b.Port.Name)
				}
			}
		}
	}
}

// checkPolicies: autoscalers, disruption budgets and network policies
// target the chart's own pods, and the network policies admit every port
// the pods serve.
func checkPolicies(t *testing.T, r *release) {
	for _, m := range r.all("HorizontalPodAutoscaler") {
		h := m.obj.(*autoscalingv2.HorizontalPodAutoscaler)
		dm, ok := r.find("Deployment", h.Spec.ScaleTargetRef.Name)
		if !ok || h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.APIVersion != "apps/v1" {
			t.Errorf("%s: target %+v is not a rendered Deployment", m, h.Spec.ScaleTargetRef)
			continue
		}
		if dm.obj.(*appsv1.Deployment).Spec.Replicas != nil {
			t.Errorf("%s: %s sets replicas, which fights the autoscaler on every upgrade", m, dm)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas || len(h.Spec.Metrics) == 0 {
			t.Errorf("%s: bad bounds or no metrics: %+v", m, h.Spec)
		}
	}
	for _, m := range r.all("PodDisruptionBudget") {
		p := m.obj.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || len(r.deploymentSelectedBy(sel)) != 1 {
			t.Errorf("%s: selector does not select exactly one Deployment", m)
		}
		if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
			t.Errorf("%s: neither maxUnavailable nor minAvailable", m)
		}
	}
	for _, m := range r.all("NetworkPolicy") {
		p := m.obj.(*networkingv1.NetworkPolicy)
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		ds := r.deploymentSelectedBy(sel)
		if err != nil || sel.Empty() || len(ds) != 1 {
			t.Errorf("%s: pod selector does not select exactly one Deployment", m)
			continue
		}
		podPorts := map[string]int32{}
		for _, cp := range ds[0].Spec.Template.Spec.Containers[0].Ports {
			podPorts[cp.Name] = cp.ContainerPort
		}
		admitted := map[int32]bool{}
		for _, rule := range p.Spec.Ingress {
			for _, rp := range rule.Ports {
				if rp.Port == nil {
					t.Errorf("%s: an ingress rule without ports admits everything", m)
					continue
				}
				port := resolvePort(*rp.Port, podPorts)
				if port == 0 {
					t.Errorf("%s: port %s is not served by the pods", m, rp.Port.String())
				}
				admitted[port] = true
			}
		}
		for name, port := range podPorts {
			if !admitted[port] {
				t.Errorf("%s: port %s (%d) of the pods is not admitted", m, name, port)
			}
		}
	}
}

// checkMonitoring: ServiceMonitors scrape the Services' http ports; every
// alert and dashboard query parses as PromQL and names only metrics the
// services register.
func checkMonitoring(t *testing.T, r *release, metrics map[string]bool) {
	for _, m := range r.all("ServiceMonitor") {
		sm := m.obj.(*monv1.ServiceMonitor)
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("%s: bad selector", m)
			continue
		}
		n := 0
		for _, s := range r.all("Service") {
			if sel.Matches(labels.Set(s.meta.GetLabels())) {
				n++
				for _, ep := range sm.Spec.Endpoints {
					ok := false
					for _, p := range s.obj.(*corev1.Service).Spec.Ports {
						ok = ok || p.Name == ep.Port
					}
					if !ok || ep.Path != "/metrics" {
						t.Errorf("%s: endpoint %s%s is not the /metrics of %s", m, ep.Port, ep.Path, s)
					}
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: selects %d Services, want 1", m, n)
		}
	}
	alerts := map[string]bool{}
	for _, m := range r.all("PrometheusRule") {
		pr := m.obj.(*monv1.PrometheusRule)
		for _, g := range pr.Spec.Groups {
			for _, rule := range g.Rules {
				where := fmt.Sprintf("%s alert %s", m, rule.Alert)
				if rule.Alert == "" {
					t.Errorf("%s: a rule without an alert name", m)
				}
				alerts[rule.Alert] = true
				checkQuery(t, where, rule.Expr.String(), metrics)
				if rule.Labels["severity"] == "" || rule.Annotations["summary"] == "" || rule.Annotations["description"] == "" {
					t.Errorf("%s: needs a severity label and summary and description annotations", where)
				}
				if rule.For != nil {
					if _, err := time.ParseDuration(string(*rule.For)); err != nil {
						t.Errorf("%s: for %q: %v", where, *rule.For, err)
					}
				}
			}
		}
	}
	if len(r.all("PrometheusRule")) > 0 {
		for _, want := range []string{"SamsaFlowFailing", "SamsaDeadLettersGrowing", "SamsaDeliveryLagGrowing", "SamsaTransformLagGrowing", "SamsaCircuitBreakerOpen", "SamsaServiceDown"} {
			if !alerts[want] {
				t.Errorf("alert %s missing (have %v)", want, keys(alerts))
			}
		}
	}
	for _, m := range r.all("ConfigMap") {
		for k, v := range m.obj.(*corev1.ConfigMap).Data {
			if strings.HasSuffix(k, ".json") {
				checkDashboard(t, m.String()+" "+k, []byte(v), metrics)
			}
		}
	}
}

// TestChartRejectsBadValues: mistakes fail at install time with a message
// naming the value, not later in a crash-looping pod.
func TestChartRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]any
		want string
	}{
		{"no brokers", map[string]any{"kafka.brokers": []any{}}, "brokers"},
		{"broker without port", map[string]any{"kafka.brokers": []any{"kafka"}}, "brokers"},
		{"typo in a key", map[string]any{"receiver.replica": 3}, "replica"},
		{"unknown log level", map[string]any{"log.level": "verbose"}, "level"},
		{"SASL without password", map[string]any{"kafka.sasl.mechanism": "SCRAM-SHA-512", "kafka.sasl.username": "u"}, "kafka.sasl.password"},
		{"SASL without username", map[string]any{"kafka.sasl.mechanism": "PLAIN", "kafka.sasl.password": "p"}, "kafka.sasl.username"},
		{"unknown SASL mechanism", map[string]any{"kafka.sasl.mechanism": "GSSAPI"}, "mechanism"},
		{"short encryption key", map[string]any{"encryption.keys": []any{"k1:c2hvcnQ="}}, "keys"},
		{"unknown token role", map[string]any{"auth.tokens": []any{map[string]any{"role": "root", "token": "0123456789abcdef0"}}}, "role"},
		{"short token", map[string]any{"auth.tokens": []any{map[string]any{"role": "admin", "token": "short"}}}, "token"},
		{"no resource limits", map[string]any{"deliverer.resources.limits": nil}, "limits"},
		{"no memory request", map[string]any{"control.resources.requests.memory": nil}, "memory"},
		{"bad drain timeout", map[string]any{"drainTimeout": "30"}, "drainTimeout"},
		{"bad anti-affinity", map[string]any{"control.podAntiAffinity": "always"}, "podAntiAffinity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, with(map[string]any{}, tc.set))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render with %v: error %v, want one naming %q", tc.set, err, tc.want)
			}
		})
	}
}

// TestHelmLint runs the checks of `helm lint --strict` through the SDK.
func TestHelmLint(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range map[string]map[string]any{
		"default":    {},
		"production": readValues(t, "examples/production-values.yaml"),
	} {
		t.Run(name, func(t *testing.T) {
			res := lint.AllWithKubeVersion(chartDir(t), vals, releaseNamespace, kv)
			for _, msg := range res.Messages {
				if msg.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", msg)
				}
			}
		})
	}
}

// checkChartFlags checks each container's command line and environment
// (its own and its ConfigMaps') against the service binary.
func checkChartFlags(t *testing.T, r *release) {
	for _, s := range services {
		t.Run(s.name, func(t *testing.T) {
			d := deploymentOf(r, s.name)
			if d == nil {
				t.Fatalf("no Deployment of %s", s.name)
			}
			b := serviceBinary(t, s.name)
			c := d.Spec.Template.Spec.Containers[0]
			cc := containerConfig{where: "chart " + d.Name, service: s.name, args: c.Args, env: map[string]string{}}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					for k, v := range configMapData(t, r, ef.ConfigMapRef.Name) {
						cc.env[k] = v
					}
				}
			}
			for _, e := range c.Env {
				cc.env[e.Name] = e.Value
			}
			checkContainerConfig(t, b, cc)
		})
	}
}

// TestValuesUsedAndDocumented: every value in values.yaml is read by some
// template and described in values.schema.json, and the schema documents
// nothing values.yaml lacks.
func TestValuesUsedAndDocumented(t *testing.T) {
	dir := chartDir(t)
	vals := readValues(t, "values.yaml")
	var paths [][]string
	leafPaths(nil, map[string]any(vals), &paths)
	if len(paths) < 50 {
		t.Fatalf("only %d values found: the walk is broken", len(paths))
	}
	refs := templateRefs(t, filepath.Join(dir, "templates"))
	var schema map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	for _, p := range paths {
		name := strings.Join(p, ".")
		if !used(p, refs) {
			t.Errorf("value %s is not used by any template", name)
		}
		if err := documented(schema, schema, p); err != nil {
			t.Errorf("value %s: %v", name, err)
		}
	}
	// The converse: every property the schema describes has a default.
	var walk func(node map[string]any, path []string)
	walk = func(node map[string]any, path []string) {
		node, _ = deref(schema, node)
		props, _ := node["properties"].(map[string]any)
		for k, sub := range props {
			p := append(slices.Clone(path), k)
			if len(p) == 1 && k == "global" {
				continue
			}
			if _, err := chartutil.Values(vals).PathValue(strings.Join(p, ".")); err != nil {
				if _, isTable := lookupTable(vals, p); !isTable {
					t.Errorf("the schema documents %s, which values.yaml lacks", strings.Join(p, "."))
					continue
				}
			}
			walk(sub.(map[string]any), p)
		}
	}
	walk(schema, nil)
}

func lookupTable(vals map[string]any, p []string) (map[string]any, bool) {
	cur := vals
	for _, k := range p {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// leafPaths lists the paths of values.yaml's leaves: scalars, lists and
// empty maps (which users fill).
func leafPaths(prefix []string, v any, out *[][]string) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		*out = append(*out, prefix)
		return
	}
	for _, k := range keys(m) {
		leafPaths(append(slices.Clone(prefix), k), m[k], out)
	}
}

var (
	valuesRef    = regexp.MustCompile(`\.Values((?:\.[A-Za-z0-9_]+)+)`)
	componentRef = regexp.MustCompile(`\$c((?:\.[A-Za-z0-9_]+)+)`)
	// wholeRef is a table used whole: toYaml .Values.x, or with .Values.x
	// (whose body is toYaml .).
	wholeRef = regexp.MustCompile(`(?:toYaml|with)\s+(\$?\.Values(?:\.[A-Za-z0-9_]+)+|\$c(?:\.[A-Za-z0-9_]+)+)`)
)

// valueRefs are the value paths the templates read.
type valueRefs struct {
	exact [][]string // read as such
	whole [][]string // tables rendered whole, with everything inside
}

// templateRefs collects the value paths the templates read: .Values.a.b
// and, in the per-service templates that bind $c to .Values.<service>,
// $c.a.b for every service.
func templateRefs(t *testing.T, dir string) valueRefs {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var refs valueRefs
	paths := func(ref string) [][]string {
		if rest, ok := strings.CutPrefix(ref, "$c."); ok {
			var out [][]string
			for _, s := range services {
				out = append(out, append([]string{s.name}, strings.Split(rest, ".")...))
			}
			return out
		}
		_, rest, _ := strings.Cut(ref, ".Values.")
		return [][]string{strings.Split(rest, ".")}
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range valuesRef.FindAllString(string(b), -1) {
			refs.exact = append(refs.exact, paths(m)...)
		}
		for _, m := range componentRef.FindAllString(string(b), -1) {
			refs.exact = append(refs.exact, paths(m)...)
		}
		for _, m := range wholeRef.FindAllStringSubmatch(string(b), -1) {
			refs.whole = append(refs.whole, paths(m[1])...)
		}
	}
	return refs
}

// used: a template reads the value itself, or renders a table holding it
// whole.
func used(p []string, refs valueRefs) bool {
	for _, r := range refs.exact {
		if slices.Equal(r, p) {
			return true
		}
	}
	for _, r := range refs.whole {
		if len(r) <= len(p) && slices.Equal(r, p[:len(r)]) {
			return true
		}
	}
	return false
}

// deref follows a local $ref, keeping the referring node's description.
func deref(root, node map[string]any) (map[string]any, string) {
	desc, _ := node["description"].(string)
	for {
		ref, ok := node["$ref"].(string)
		if !ok {
			break
		}
		target := root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			target, _ = target[part].(map[string]any)
		}
		if target == nil {
			return map[string]any{}, desc
		}
		node = target
		if desc == "" {
			desc, _ = node["description"].(string)
		}
	}
	return node, desc
}

// documented: every step of the path is a described schema property, or
// lies inside a described free-form object or map.
func documented(root, node map[string]any, p []string) error {
	for i, k := range p {
		props, _ := node["properties"].(map[string]any)
		sub, ok := props[k].(map[string]any)
		if !ok {
			if ap, isMap := node["additionalProperties"].(map[string]any); isMap && ap != nil {
				return nil // a map of user keys, described as a whole
			}
			if node["type"] == "object" && node["properties"] == nil && node["additionalProperties"] == nil {
				return nil // a free-form Kubernetes object, described as a whole
			}
			return fmt.Errorf("%s is not in values.schema.json", strings.Join(p[:i+1], "."))
		}
		var desc string
		sub, desc = deref(root, sub)
		if strings.TrimSpace(desc) == "" {
			return fmt.Errorf("%s has no description in values.schema.json", strings.Join(p[:i+1], "."))
		}
		node = sub
	}
	return nil
}
