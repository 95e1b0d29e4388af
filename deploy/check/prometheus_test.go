package check

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// selector is one metric a query reads, with the job it asks for ("" if
// the query does not say).
type selector struct {
	name, job, where string
}

var promql = parser.NewParser(parser.Options{})

// selectorsOf parses a PromQL expression and returns its metric names.
func selectorsOf(t *testing.T, where, expr string) []selector {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return nil
	}
	var out []selector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{name: vs.Name, where: where}
		for _, m := range vs.LabelMatchers {
			switch m.Name {
			case model.MetricNameLabel:
				s.name = m.Value
			case "job":
				s.job = m.Value
			}
		}
		out = append(out, s)
		return nil
	})
	return out
}

// alertSelectors parses deploy/prometheus/alerts.yml with Prometheus' own
// rule parser (strict: unknown fields are errors; every expression and
// template is checked) and returns the metrics its rules read.
func alertSelectors(t *testing.T) []selector {
	t.Helper()
	groups, errs := rulefmt.Parse(readDeploy(t, "prometheus/alerts.yml"), false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("alerts.yml: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	var out []selector
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" {
				t.Errorf("group %s: a rule that is not an alert", g.Name)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("alert %s has no summary", r.Alert)
			}
			out = append(out, selectorsOf(t, "alert "+r.Alert, r.Expr)...)
		}
	}
	if n == 0 {
		t.Error("alerts.yml has no rules")
	}
	return out
}

func TestAlertRules(t *testing.T) { alertSelectors(t) }

// TestScrapeConfig decodes prometheus.yml strictly into the part of
// Prometheus' configuration it uses, and checks that it scrapes both
// derper and derpprobe at /debug/varz and loads the alert rules.
func TestScrapeConfig(t *testing.T) {
	type staticConfig struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	var cfg struct {
		Global struct {
			ScrapeInterval     model.Duration `json:"scrape_interval"`
			EvaluationInterval model.Duration `json:"evaluation_interval"`
		} `json:"global"`
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string         `json:"job_name"`
			MetricsPath   string         `json:"metrics_path"`
			Scheme        string         `json:"scheme"`
			StaticConfigs []staticConfig `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.UnmarshalStrict(readDeploy(t, "prometheus/prometheus.yml"), &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	for _, f := range cfg.RuleFiles {
		if _, err := os.Stat(filepath.Join(deployFile(t, "prometheus"), f)); err != nil {
			t.Errorf("rule_files: %v", err)
		}
	}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		if sc.MetricsPath != "/debug/varz" {
			t.Errorf("job %s: metrics_path %q; derper and derpprobe serve /debug/varz", sc.JobName, sc.MetricsPath)
		}
		if sc.Scheme != "http" && sc.Scheme != "https" {
			t.Errorf("job %s: scheme %q", sc.JobName, sc.Scheme)
		}
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				if !strings.Contains(tg, ":") {
					t.Errorf("job %s: target %q has no port", sc.JobName, tg)
				}
			}
		}
	}
	for _, j := range []string{"derper", "derpprobe"} {
		if !jobs[j] {
			t.Errorf("no scrape job %q (the alert rules select on it)", j)
		}
	}
}
