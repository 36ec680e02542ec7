package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// targetLabels are added by Prometheus when it scrapes, not by the process.
var targetLabels = []string{"instance", "job"}

// scrape reads the metric families of /metrics at url: name -> label names.
func scrape(t *testing.T, url string) map[string][]string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	out := map[string][]string{}
	for name, f := range families {
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			labels = append(labels, "le")
		}
		if f.GetType() == dto.MetricType_SUMMARY {
			labels = append(labels, "quantile")
		}
		slices.Sort(labels)
		out[name] = slices.Compact(labels)
	}
	return out
}

// namedQueries are the PromQL expressions of the dashboard and the alert
// rules, each with where it is.
func namedQueries(t *testing.T) map[string]string {
	t.Helper()
	root := filepath.Join("..", "..")
	out := map[string]string{}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "perpetua.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			out["dashboard panel "+p.Title+": "+q.Expr] = q.Expr
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	b, err = os.ReadFile(filepath.Join(root, "configs", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d queries found in the dashboard and the alerts", len(out))
	}
	return out
}

// family is the metric family a series name belongs to (a histogram's
// _bucket, _sum and _count are its own).
func family(name string, exported map[string][]string) string {
	if _, ok := exported[name]; ok {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, ok := exported[base]; ok {
				return base
			}
		}
	}
	return name
}

// checkNamedMetrics fails for each metric a dashboard panel or an alert
// names that the processes do not export, or with a label they do not
// give it. exported is the union of the processes' scrapes.
func checkNamedMetrics(t *testing.T, exported map[string][]string) {
	t.Helper()
	for where, q := range namedQueries(t) {
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		check(t, where, expr, exported)
	}
}

// check walks node: every selector names an exported metric with the
// labels it matches on, and every aggregation groups by labels that a
// metric inside has (or a join inside brings).
func check(t *testing.T, where string, node parser.Node, exported map[string][]string) {
	t.Helper()
	switch n := node.(type) {
	case *parser.AggregateExpr:
		in := selectors(n.Expr)
		joined := included(n.Expr)
		for _, l := range n.Grouping {
			if slices.Contains(targetLabels, l) || slices.Contains(joined, l) {
				continue
			}
			found := false
			for _, s := range in {
				found = found || slices.Contains(exported[family(s.Name, exported)], l)
			}
			if !found {
				t.Errorf("%s: groups by %q, which no metric inside has", where, l)
			}
		}
		check(t, where, n.Expr, exported)
		if n.Param != nil {
			check(t, where, n.Param, exported)
		}
		return
	case *parser.VectorSelector:
		name := n.Name
		for _, m := range n.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				name = m.Value
			}
		}
		f := family(name, exported)
		labels, ok := exported[f]
		if !ok {
			t.Errorf("%s: %s is not exported by any process", where, name)
			return
		}
		for _, m := range n.LabelMatchers {
			if m.Name == model.MetricNameLabel || slices.Contains(targetLabels, m.Name) {
				continue
			}
			if !slices.Contains(labels, m.Name) {
				t.Errorf("%s: %s has no label %q (it has %v)", where, name, m.Name, labels)
			}
		}
		return
	}
	for _, child := range parser.Children(node) {
		check(t, where, child, exported)
	}
}

func selectors(node parser.Node) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if s, ok := n.(*parser.VectorSelector); ok {
			out = append(out, s)
		}
		return nil
	})
	return out
}

// included are the labels joins inside node bring from their other side
// (group_left (role)).
func included(node parser.Node) []string {
	var out []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if b, ok := n.(*parser.BinaryExpr); ok && b.VectorMatching != nil {
			out = append(out, b.VectorMatching.Include...)
		}
		return nil
	})
	return out
}
