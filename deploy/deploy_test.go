// Package deploy_test checks the Kubernetes manifests against the binary
// they run: rendered as kubectl would (kustomize), every variable they set
// is one the configuration reads, every probe answers on the port it names,
// every role exists, and the binary accepts each container's configuration.
package deploy_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/test/testkit"
)

// ourName labels the workloads that run the perpetua image.
const ourName = "perpetua-flow-api"

// runtimeVariables are read by the Go runtime, and the OpenTelemetry SDK's
// standard ones by the tracing (see observability.Tracing), not the
// configuration.
var runtimeVariables = []string{"GOMEMLIMIT", "GOGC", "GOMAXPROCS",
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SDK_DISABLED"}

// overlays and the image each must run.
var overlays = map[string]string{
	"dev":  "perpetua-flow-api:1.0.0",
	"prod": "registry.example.com/perpetua-flow-api:1.0.0",
}

var binary string

func TestMain(m *testing.M) { testkit.MainWithBinary(m, &binary) }

// object is the part of a Kubernetes object the checks read.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec struct {
		Selector *struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Template *struct {
			Metadata struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec podSpec `json:"spec"`
		} `json:"template"`
		// Service
		Ports []struct {
			Name       string `json:"name"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
		// HorizontalPodAutoscaler
		ScaleTargetRef *struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
	} `json:"spec"`
}

type podSpec struct {
	SecurityContext *securityContext `json:"securityContext"`
	Containers      []container      `json:"containers"`
}

type securityContext struct {
	RunAsNonRoot             *bool `json:"runAsNonRoot"`
	RunAsUser                *int  `json:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
	Capabilities             *struct {
		Drop []string `json:"drop"`
	} `json:"capabilities"`
}

type container struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	Ports   []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `json:"name"`
		} `json:"configMapRef"`
		SecretRef *struct {
			Name string `json:"name"`
		} `json:"secretRef"`
	} `json:"envFrom"`
	Env []struct {
		Name      string  `json:"name"`
		Value     *string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `json:"name"`
				Key      string `json:"key"`
				Optional bool   `json:"optional"`
			} `json:"secretKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	Resources struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	ReadinessProbe  *probe           `json:"readinessProbe"`
	LivenessProbe   *probe           `json:"livenessProbe"`
	StartupProbe    *probe           `json:"startupProbe"`
	SecurityContext *securityContext `json:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
	TCPSocket *struct {
		Port any `json:"port"`
	} `json:"tcpSocket"`
}

// render builds an overlay as `kubectl apply -k` would.
func render(t *testing.T, overlay string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("kustomize", "overlays", overlay))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", overlay, err)
	}
	var out []object
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		out = append(out, o)
	}
	return out
}

// workload is one container of ours, with the environment it gets.
type workload struct {
	name      string // kind/name/container
	component string
	pod       podSpec
	c         container
	env       map[string]string // literal values, config maps included
	secrets   map[string]string // variable -> secret key
}

func ours(t *testing.T, objs []object) []workload {
	t.Helper()
	maps := map[string]map[string]string{}
	for _, o := range objs {
		if o.Kind == "ConfigMap" {
			maps[o.Metadata.Name] = o.Data
		}
	}
	var out []workload
	for _, o := range objs {
		if o.Spec.Template == nil || o.Spec.Template.Metadata.Labels["app.kubernetes.io/name"] != ourName {
			continue
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			w := workload{name: o.Kind + "/" + o.Metadata.Name + "/" + c.Name, pod: o.Spec.Template.Spec, c: c,
				component: o.Spec.Template.Metadata.Labels["app.kubernetes.io/component"],
				env:       map[string]string{}, secrets: map[string]string{}}
			for _, from := range c.EnvFrom {
				if from.SecretRef != nil {
					t.Errorf("%s: envFrom a Secret hides which variables it sets: name each (env, secretKeyRef)", w.name)
				}
				if from.ConfigMapRef != nil {
					data, ok := maps[from.ConfigMapRef.Name]
					if !ok {
						t.Errorf("%s: no ConfigMap %s", w.name, from.ConfigMapRef.Name)
					}
					for k, v := range data {
						w.env[k] = v
					}
				}
			}
			for _, e := range c.Env {
				switch {
				case e.Value != nil:
					w.env[e.Name] = *e.Value
					delete(w.secrets, e.Name)
				case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
					w.secrets[e.Name] = e.ValueFrom.SecretKeyRef.Key
					delete(w.env, e.Name)
				default:
					t.Errorf("%s: %s is neither a value nor a secret", w.name, e.Name)
				}
			}
			out = append(out, w)
		}
	}
	return out
}

func TestManifestsMatchTheBinary(t *testing.T) {
	cfg, err := config.Load(config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	known := append(cfg.Variables(), runtimeVariables...)
	roles := map[string][]string{}
	for overlay, image := range overlays {
		t.Run(overlay, func(t *testing.T) {
			objs := render(t, overlay)
			ws := ours(t, objs)
			components := map[string]bool{}
			for _, w := range ws {
				components[w.component] = true
				// The image, and the role the component says.
				if w.c.Image != image {
					t.Errorf("%s: image %q, want %q", w.name, w.c.Image, image)
				}
				if len(w.c.Command) > 0 {
					t.Errorf("%s: the image's entrypoint is the binary: give args, not command", w.name)
				}
				args := strings.Join(w.c.Args, " ")
				want := map[string][]string{"api": {"serve --role=api", "serve --role=all"}, "worker": {"serve --role=worker"},
					"migrate": {"migrate"}}[w.component]
				if !slices.Contains(want, args) {
					t.Errorf("%s (component %q): args %q, want one of %q", w.name, w.component, args, want)
				}
				if role, ok := strings.CutPrefix(args, "serve --role="); ok {
					roles[role] = append(roles[role], overlay+" "+w.name)
				}
				// Every variable is one the binary reads.
				for name := range w.env {
					if !slices.Contains(known, name) {
						t.Errorf("%s: %s is not a variable the configuration reads", w.name, name)
					}
				}
				for name := range w.secrets {
					if !slices.Contains(known, name) {
						t.Errorf("%s: %s (from a secret) is not a variable the configuration reads", w.name, name)
					}
				}
				checkSecurity(t, w)
				checkMemory(t, w)
				checkPorts(t, w)
				checkConfig(t, w)
			}
			if !components["api"] {
				t.Error("no api")
			}
			if overlay == "prod" && (!components["worker"] || !components["migrate"]) {
				t.Errorf("prod runs an api, workers and the migrate Job; found %v", components)
			}
			checkServices(t, objs)
			// Every other pod of the base (PgBouncer) runs as safely; dev's
			// own throwaway PostgreSQL and Redis run as their images say.
			for _, o := range objs {
				if o.Spec.Template == nil || o.Spec.Template.Metadata.Labels["app.kubernetes.io/name"] == ourName {
					continue
				}
				if n := o.Spec.Template.Metadata.Labels["app.kubernetes.io/name"]; overlay == "dev" && (n == "postgres" || n == "redis") {
					continue
				}
				for _, c := range o.Spec.Template.Spec.Containers {
					checkSecurity(t, workload{name: o.Kind + "/" + o.Metadata.Name + "/" + c.Name, pod: o.Spec.Template.Spec, c: c})
				}
			}
		})
	}
	// Every role the manifests run answers its probes on the ports they name.
	for role, where := range roles {
		t.Run("probes "+role, func(t *testing.T) { checkProbes(t, role, where) })
	}
}

func checkSecurity(t *testing.T, w workload) {
	t.Helper()
	pod, c := w.pod.SecurityContext, w.c.SecurityContext
	nonRoot := (pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot) || (c != nil && c.RunAsNonRoot != nil && *c.RunAsNonRoot)
	if !nonRoot {
		t.Errorf("%s: runAsNonRoot is not set", w.name)
	}
	if pod != nil && pod.RunAsUser != nil && *pod.RunAsUser == 0 {
		t.Errorf("%s: runs as uid 0", w.name)
	}
	if c == nil || c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		t.Errorf("%s: the root filesystem is writable", w.name)
	}
	if c == nil || c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		t.Errorf("%s: privilege escalation is allowed", w.name)
	}
	if c == nil || c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities are not all dropped", w.name)
	}
}

// checkMemory: a memory limit, and for the servers a soft limit
// (GOMEMLIMIT) between 75% and 95% of it.
func checkMemory(t *testing.T, w workload) {
	t.Helper()
	limit, ok := w.c.Resources.Limits["memory"]
	if !ok || w.c.Resources.Requests["memory"] == "" || w.c.Resources.Requests["cpu"] == "" {
		t.Errorf("%s: no memory limit, or no requests", w.name)
		return
	}
	if w.component == "migrate" {
		return
	}
	lim, err := humanize.ParseBytes(strings.TrimSuffix(limit, "i") + "iB")
	soft, err2 := humanize.ParseBytes(w.env["GOMEMLIMIT"])
	if err != nil || err2 != nil {
		t.Errorf("%s: limit %q, GOMEMLIMIT %q: %v %v", w.name, limit, w.env["GOMEMLIMIT"], err, err2)
		return
	}
	if r := float64(soft) / float64(lim); r < 0.75 || r > 0.95 {
		t.Errorf("%s: GOMEMLIMIT %s is %.0f%% of the %s limit (want 75-95%%)", w.name, w.env["GOMEMLIMIT"], 100*r, limit)
	}
}

// checkPorts: the named ports are the configured ones, and every probe
// names a port of the container.
func checkPorts(t *testing.T, w workload) {
	t.Helper()
	byName := map[string]int{}
	for _, p := range w.c.Ports {
		byName[p.Name] = p.ContainerPort
	}
	want := map[string]string{"http": "PORT", "ops": "OPS_PORT"}
	for name, port := range byName {
		v, ok := want[name]
		if !ok {
			t.Errorf("%s: port %s is neither http nor ops", w.name, name)
			continue
		}
		if w.env[v] != strconv.Itoa(port) {
			t.Errorf("%s: port %s is %d but %s is %q", w.name, name, port, v, w.env[v])
		}
	}
	if w.component == "migrate" {
		return
	}
	if w.c.ReadinessProbe == nil || w.c.LivenessProbe == nil {
		t.Errorf("%s: readiness and liveness probes are needed", w.name)
	}
	for _, p := range []*probe{w.c.ReadinessProbe, w.c.LivenessProbe, w.c.StartupProbe} {
		if p == nil {
			continue
		}
		if p.HTTPGet == nil {
			t.Errorf("%s: probes are HTTP GETs of /health/…", w.name)
			continue
		}
		name, _ := p.HTTPGet.Port.(string)
		if _, ok := byName[name]; !ok {
			t.Errorf("%s: a probe names port %v, which the container does not", w.name, p.HTTPGet.Port)
		}
	}
	if w.c.ReadinessProbe != nil && w.c.ReadinessProbe.HTTPGet != nil && w.c.ReadinessProbe.HTTPGet.Path != "/health/ready" {
		t.Errorf("%s: readiness is /health/ready", w.name)
	}
	if w.c.LivenessProbe != nil && w.c.LivenessProbe.HTTPGet != nil && w.c.LivenessProbe.HTTPGet.Path != "/health/live" {
		t.Errorf("%s: liveness is /health/live", w.name)
	}
}

// checkConfig: the binary accepts the container's configuration (`perpetua
// config check`), its secrets given stand-in values.
func checkConfig(t *testing.T, w workload) {
	t.Helper()
	stand := map[string]string{
		"database-url":        "postgres://perpetua:secret@127.0.0.1:6432/perpetua",
		"database-direct-url": "postgres://perpetua:secret@127.0.0.1:5432/perpetua",
		"jwt-private-key":     testkit.PrivateKeyPEM(t),
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range w.env {
		env = append(env, k+"="+v)
	}
	for name, key := range w.secrets {
		if v, ok := stand[key]; ok {
			env = append(env, name+"="+v)
		}
	}
	cmd := exec.Command(binary, "config", "check")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: perpetua config check refuses its configuration: %v\n%s", w.name, err, out)
	}
}

// checkServices: each Service selects pods that have the ports it targets;
// the autoscaler scales a Deployment that exists.
func checkServices(t *testing.T, objs []object) {
	t.Helper()
	deployments := map[string]bool{}
	for _, o := range objs {
		if o.Kind == "Deployment" {
			deployments[o.Metadata.Name] = true
		}
	}
	for _, s := range objs {
		switch s.Kind {
		case "HorizontalPodAutoscaler":
			if ref := s.Spec.ScaleTargetRef; ref == nil || ref.Kind != "Deployment" || !deployments[ref.Name] {
				t.Errorf("HorizontalPodAutoscaler %s scales nothing that exists", s.Metadata.Name)
			}
			continue
		case "Service", "PodDisruptionBudget":
		default:
			continue
		}
		var sel map[string]string
		if s.Kind == "PodDisruptionBudget" && s.Spec.Selector != nil {
			sel = s.Spec.Selector.MatchLabels
		} else if s.Kind == "Service" {
			var raw struct {
				Spec struct {
					Selector map[string]string `json:"selector"`
				} `json:"spec"`
			}
			b, _ := yaml.Marshal(s)
			_ = yaml.Unmarshal(b, &raw)
			sel = raw.Spec.Selector
		}
		var pods []podSpec
		for _, o := range objs {
			if o.Spec.Template == nil {
				continue
			}
			match := len(sel) > 0
			for k, v := range sel {
				if o.Spec.Template.Metadata.Labels[k] != v {
					match = false
				}
			}
			if match {
				pods = append(pods, o.Spec.Template.Spec)
			}
		}
		if len(pods) == 0 {
			t.Errorf("%s %s selects no pods", s.Kind, s.Metadata.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			name, _ := p.TargetPort.(string)
			found := false
			for _, pod := range pods {
				for _, c := range pod.Containers {
					for _, cp := range c.Ports {
						found = found || cp.Name == name
					}
				}
			}
			if s.Kind == "Service" && !found {
				t.Errorf("Service %s targets port %v, which its pods do not name", s.Metadata.Name, p.TargetPort)
			}
		}
	}
}

// checkProbes runs the role and asks each probe path on each port the
// manifests probe: the API port (http) where the role serves it, and the
// ops port.
func checkProbes(t *testing.T, role string, where []string) {
	if role != "all" && !testkit.Postgres() {
		t.Skipf("--role=%s needs PostgreSQL (%s)", role, testkit.EnvDatabaseURL)
	}
	port, ops := testkit.FreePort(t), testkit.FreePort(t)
	env := []string{"DATABASE_URL=" + testkit.NewDatabase(t), "DATA_DIR=" + t.TempDir(), "PORT=" + port, "OPS_PORT=" + ops,
		"ENVIRONMENT=development", "LOG_LEVEL=warn"}
	if testkit.Postgres() {
		m := testkit.Run(t, binary, env, "migrate")
		if err := <-m.Done; err != nil {
			t.Fatalf("migrate: %v\n%s", err, m.Out.String())
		}
	}
	p := testkit.Run(t, binary, env, "serve", "--role="+role)
	testkit.WaitReady(t, "http://127.0.0.1:"+ops, p)
	ports := map[string]string{"ops": ops}
	if role != "worker" {
		ports["http"] = port
	}
	for name, port := range ports {
		for _, path := range []string{"/health/ready", "/health/live"} {
			deadline := time.Now().Add(10 * time.Second)
			for {
				res, err := http.Get("http://127.0.0.1:" + port + path)
				if err == nil {
					res.Body.Close()
					if res.StatusCode == http.StatusOK {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Errorf("--role=%s (%v): %s on the %s port does not answer 200", role, where, path, name)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	p.Stop(t)
}
