// Package kubernetes holds Portero's Kubernetes manifests; this test checks
// them offline. A real schema validator (kubeconform, kubeval) needs the
// Kubernetes JSON schemas downloaded at run time, which CI here cannot do,
// so the test checks by hand what a broken manifest would get wrong: kinds
// and apiVersions, required fields, selectors that match, probes and scrape
// annotations on the ops port, secrets from the Secret, the hardened
// security context, and that the embedded portero.yaml passes configs.Parse.
package kubernetes

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portero/portero/configs"
)

// obj is one decoded manifest.
type obj map[string]any

// get walks a dotted path ("spec.template.spec"); nil when absent.
func (o obj) get(path string) any {
	var cur any = o
	for _, k := range strings.Split(path, ".") {
		m, ok := asMap(cur)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// asMap accepts both map types: yaml.v3 decodes the maps nested in an obj
// as obj.
func asMap(v any) (obj, bool) {
	switch m := v.(type) {
	case obj:
		return m, true
	case map[string]any:
		return obj(m), true
	}
	return nil, false
}

func (o obj) m(path string) obj {
	v, _ := asMap(o.get(path))
	return v
}

func (o obj) list(path string) []obj {
	raw, _ := o.get(path).([]any)
	out := make([]obj, 0, len(raw))
	for _, v := range raw {
		m, _ := asMap(v)
		out = append(out, m)
	}
	return out
}

func (o obj) str(path string) string {
	s, _ := o.get(path).(string)
	return s
}

// wantAPIVersion is the apiVersion of every kind the manifests may use.
var wantAPIVersion = map[string]string{
	"Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1", "Secret": "v1",
	"PodDisruptionBudget": "policy/v1", "Job": "batch/v1",
}

// loadManifests decodes every document of every YAML file here, by kind.
func loadManifests(t testing.TB) map[string]obj {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string]obj{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var o obj
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if o == nil {
				continue
			}
			kind, name := o.str("kind"), o.str("metadata.name")
			want, known := wantAPIVersion[kind]
			switch {
			case !known:
				t.Errorf("%s: unexpected kind %q", f, kind)
			case o.str("apiVersion") != want:
				t.Errorf("%s: %s has apiVersion %q, want %q", f, kind, o.str("apiVersion"), want)
			case name == "":
				t.Errorf("%s: %s without metadata.name", f, kind)
			}
			key := kind
			if kind == "Job" || kind == "Secret" {
				key = kind + "/" + name
			}
			if _, dup := byKind[key]; dup {
				t.Errorf("%s: a second %s", f, key)
			}
			byKind[key] = o
		}
	}
	for _, k := range []string{"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "Secret/portero"} {
		if byKind[k] == nil {
			t.Fatalf("no %s manifest", k)
		}
	}
	return byKind
}

// matches reports whether selector's matchLabels (or plain map) select labels.
func matches(selector, labels obj) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// env is the environment the pod gets from the Secret, for configs.Parse.
func secretEnv(t testing.TB, secret obj) func(string) string {
	t.Helper()
	data := secret.m("stringData")
	return func(k string) string { s, _ := data[k].(string); return s }
}

func TestManifests(t *testing.T) {
	t.Parallel()
	all := loadManifests(t)
	dep, svc, pdb, cm, secret := all["Deployment"], all["Service"], all["PodDisruptionBudget"], all["ConfigMap"], all["Secret/portero"]

	// The embedded configuration is valid with the Secret's variables set,
	// and its ops listener answers the kubelet and Prometheus.
	yml, _ := cm.m("data")["portero.yaml"].(string)
	if yml == "" {
		t.Fatal("ConfigMap has no data.portero.yaml")
	}
	cfg, err := configs.Parse([]byte(yml), secretEnv(t, secret))
	if err != nil {
		t.Fatalf("portero.yaml from the ConfigMap: %v", err)
	}
	host, opsPort, err := net.SplitHostPort(cfg.OpsListen)
	if err != nil || (host != "" && host != "0.0.0.0" && host != "::") {
		t.Errorf("ops_listen %q: probes and scrapes come from outside the pod, listen on every interface", cfg.OpsListen)
	}
	_, httpPort, _ := net.SplitHostPort(cfg.Listen)

	// Replicas, selector and template labels.
	if r, _ := dep.get("spec.replicas").(int); r < 2 {
		t.Errorf("replicas %v, want at least 2", dep.get("spec.replicas"))
	}
	podLabels := dep.m("spec.template.metadata.labels")
	if !matches(dep.m("spec.selector.matchLabels"), podLabels) {
		t.Error("Deployment selector does not select its own pods")
	}
	if !matches(svc.m("spec.selector"), podLabels) {
		t.Error("Service selector does not select the pods")
	}
	if !matches(pdb.m("spec.selector.matchLabels"), podLabels) {
		t.Error("PodDisruptionBudget selector does not select the pods")
	}
	if pdb.get("spec.minAvailable") == nil && pdb.get("spec.maxUnavailable") == nil {
		t.Error("PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
	}

	pod := dep.m("spec.template.spec")
	if pod.get("securityContext.runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	containers := pod.list("containers")
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]
	if c.str("image") == "" {
		t.Error("container without image")
	}
	ports := map[string]string{}
	for _, p := range c.list("ports") {
		ports[p.str("name")] = strings.TrimSpace(strings.Trim(yamlString(p.get("containerPort")), `"`))
	}
	if ports["ops"] != opsPort || ports["http"] != httpPort {
		t.Errorf("container ports %v, want http %s and ops %s from portero.yaml", ports, httpPort, opsPort)
	}

	// Probes on the ops port.
	for probe, path := range map[string]string{"readinessProbe": "/-/readyz", "livenessProbe": "/-/healthz"} {
		if got := c.str(probe + ".httpGet.path"); got != path {
			t.Errorf("%s path %q, want %q", probe, got, path)
		}
		if port := yamlString(c.get(probe + ".httpGet.port")); port != "ops" && port != opsPort {
			t.Errorf("%s port %q, want the ops port", probe, port)
		}
	}

	// Scrape annotations point at the ops listener's metrics.
	ann := dep.m("spec.template.metadata.annotations")
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != opsPort || ann["prometheus.io/path"] != "/-/metrics" {
		t.Errorf("scrape annotations %v, want scrape true, port %s, path /-/metrics", ann, opsPort)
	}

	// Secrets come from the Secret, never from literal values.
	env := map[string]obj{}
	for _, e := range c.list("env") {
		env[e.str("name")] = e
	}
	for _, k := range []string{"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} {
		e := env[k]
		if e == nil || e.get("value") != nil || e.str("valueFrom.secretKeyRef.name") != secret.str("metadata.name") || e.str("valueFrom.secretKeyRef.key") != k {
			t.Errorf("env %s: %v, want valueFrom.secretKeyRef {name: %s, key: %s}", k, e, secret.str("metadata.name"), k)
		}
	}

	// Hardened container: read-only root, no escalation, limits.
	sc := c.m("securityContext")
	if sc.get("readOnlyRootFilesystem") != true || sc.get("allowPrivilegeEscalation") != false {
		t.Errorf("container securityContext %v, want readOnlyRootFilesystem true and allowPrivilegeEscalation false", sc)
	}
	for _, r := range []string{"requests.cpu", "requests.memory", "limits.memory"} {
		if c.m("resources").get(r) == nil {
			t.Errorf("resources.%s not set", r)
		}
	}

	// The config directory is the ConfigMap without subPath (which would
	// never be updated, defeating live reload); the spool is writable.
	volumes := map[string]obj{}
	for _, v := range pod.list("volumes") {
		volumes[v.str("name")] = v
	}
	var sawConfig, sawSpool bool
	for _, vm := range c.list("volumeMounts") {
		v := volumes[vm.str("name")]
		switch {
		case v.str("configMap.name") == cm.str("metadata.name"):
			sawConfig = true
			if vm.get("subPath") != nil {
				t.Error("the ConfigMap is mounted with subPath: Kubernetes never updates such mounts, so live reload would not work")
			}
			if args := strings.Join(toStrings(c.get("args")), " "); !strings.Contains(args, vm.str("mountPath")+"/portero.yaml") {
				t.Errorf("args %q do not name %s/portero.yaml", args, vm.str("mountPath"))
			}
		case v.get("emptyDir") != nil && vm.str("mountPath") == filepath.Clean(cfg.Audit.SpoolDir):
			sawSpool = true
		}
	}
	if !sawConfig {
		t.Error("the ConfigMap is not mounted")
	}
	if !sawSpool {
		t.Errorf("no emptyDir at audit.spool_dir %q: the root file system is read-only", cfg.Audit.SpoolDir)
	}

	// The Service exposes the public port only.
	for _, p := range svc.list("spec.ports") {
		if tp := yamlString(p.get("targetPort")); tp == "ops" || tp == opsPort {
			t.Errorf("Service exposes the ops port (%s): keep metrics and probes private", tp)
		}
	}

	// The migration Job runs the same config.
	if job := all["Job/portero-migrate"]; job != nil {
		jc := job.list("spec.template.spec.containers")
		if len(jc) != 1 || !strings.HasPrefix(strings.Join(toStrings(jc[0].get("args")), " "), "migrate up") {
			t.Errorf("migration Job does not run `portero migrate up`: %v", jc)
		}
		if job.str("spec.template.spec.restartPolicy") != "Never" && job.str("spec.template.spec.restartPolicy") != "OnFailure" {
			t.Error("a Job's pods must have restartPolicy Never or OnFailure")
		}
	}
}

func yamlString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := yaml.Marshal(x)
		return strings.TrimSpace(string(b))
	}
}

func toStrings(v any) []string {
	raw, _ := v.([]any)
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		out = append(out, yamlString(s))
	}
	return out
}
