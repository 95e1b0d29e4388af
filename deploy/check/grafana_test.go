package check

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// grafanaVars stand in for Grafana's variables so that queries parse as
// PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*")

// dashboardSelectors decodes the Grafana dashboard and returns the metrics
// its panels and variables query, after checking its structure: unique
// panel IDs, panels inside the 24-column grid without overlaps, every
// panel on the dashboard's data source variable, every query valid PromQL.
func dashboardSelectors(t *testing.T) []selector {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readDeploy(t, "grafana/derper-dashboard.json"), &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard uid %q title %q with %d panels", d.UID, d.Title, len(d.Panels))
	}
	vars := map[string]bool{}
	var out []selector
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "query" {
			q := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
			metric, _, _ := strings.Cut(q, ", ")
			out = append(out, selectorsOf(t, "variable "+v.Name, metric)...)
		}
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	for _, p := range d.Panels {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if ids[p.ID] {
			t.Errorf("%s: duplicate id", where)
		}
		ids[p.ID] = true
		if v := strings.Trim(p.Datasource.UID, "${}"); !vars[v] {
			t.Errorf("%s: data source %q is not a dashboard variable", where, p.Datasource.UID)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v outside the grid", where, g)
		}
	grid:
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("%s overlaps %s", where, other)
					break grid
				}
				cells[[2]int{x, y}] = where
			}
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", where)
		}
		for _, tg := range p.Targets {
			out = append(out, selectorsOf(t, where, grafanaVars.Replace(tg.Expr))...)
		}
	}
	return out
}

func TestGrafanaDashboard(t *testing.T) { dashboardSelectors(t) }
